"""Units and number parsing.

Conventions used everywhere in scaleplan:

* FLOPs are plain floating-point operations (not FLOP/s). Kaplan et al. quote compute in PF-days:
  1 PF-day = 1e15 FLOP/s x 86,400 s = 8.64e19 FLOPs.
* Memory: GiB = 2**30 bytes (what nvidia-smi and torch report); GB = 1e9 bytes (what marketing and the ZeRO paper use).
* Counts accept SI-style suffixes: k = 1e3, M = 1e6, B or G = 1e9, T = 1e12, P = 1e15 ("1.3B", "350M", "2.5T").
"""

from __future__ import annotations

import math
import re

from .errors import ScalePlanError

PF_DAY = 1e15 * 86_400.0  # FLOPs in one petaflop/s-day (Kaplan et al. 2020, Sec. 2.1)
GIB = float(2**30)
MIB = float(2**20)
GB = 1e9

SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9, "g": 1e9, "G": 1e9,
            "t": 1e12, "T": 1e12, "p": 1e15, "P": 1e15}

_NUM = re.compile(
    r"^\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<suf>[kKmMbBgGtTpP]?)\s*$"
)
FLOPS_UNITS = {"flops": 1.0, "flop": 1.0, "pf-days": PF_DAY, "pf-day": PF_DAY, "pfdays": PF_DAY}


def parse_quantity(text: str | float | int) -> float:
    """Parse a number that may carry a thousands separator or a size suffix.

    >>> parse_quantity("1.3B"), parse_quantity("350M"), parse_quantity("1,000,000"), parse_quantity("3e21")
    (1300000000.0, 350000000.0, 1000000.0, 3e+21)

    Raises ``ValueError`` (not ScalePlanError: callers add the file/row/column context) when it is not a number.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number")
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().replace(",", "").replace("_", "")
    m = _NUM.match(s)
    if not m:
        # Allow explicit non-finite spellings so validation (not parsing) reports them.
        if s.lower() in {"nan", "inf", "+inf", "-inf", "infinity", "-infinity"}:
            return float(s.lower().replace("infinity", "inf"))
        raise ValueError(f"{text!r} is not a number (suffixes allowed: k, M, B, T, P)")
    return float(m.group("num")) * SUFFIXES[m.group("suf")]


def parse_positive(text: str | float, what: str) -> float:
    """Parse a CLI value that must be a finite number > 0; raise ScalePlanError naming ``what``."""
    try:
        v = parse_quantity(text)
    except ValueError as e:
        raise ScalePlanError(f"{what}: {e}") from None
    if not math.isfinite(v) or v <= 0:
        raise ScalePlanError(f"{what} must be a finite number > 0, got {text!r}")
    return v


def flops_unit_factor(unit: str) -> float:
    """FLOPs per unit of the given compute unit name ('flops' or 'pf-days')."""
    key = unit.strip().lower()
    if key not in FLOPS_UNITS:
        raise ScalePlanError(f"unknown compute unit {unit!r}: use 'flops' or 'pf-days'")
    return FLOPS_UNITS[key]


def fmt_count(x: float | None, digits: int = 3) -> str:
    """Human form of a count: 2.94e10 -> '29.4B'."""
    if x is None or not math.isfinite(x):
        return "—"
    for div, suf in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.{digits}g}{suf}"
    return f"{x:.{digits}g}"
