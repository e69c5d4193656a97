"""Units and number parsing.

Conventions used everywhere in scaleplan:

* FLOPs are plain floating-point operations (not FLOP/s). Kaplan et al. quote compute in PF-days:
  1 PF-day = 1e15 FLOP/s x 86,400 s = 8.64e19 FLOPs.
* Memory: GiB = 2**30 bytes (what nvidia-smi and torch report); GB = 1e9 bytes (what marketing and the ZeRO paper use).
* Counts accept SI-style suffixes: k = 1e3, M = 1e6, B or G = 1e9, T = 1e12, P = 1e15 ("1.3B", "350M", "2.5T"), and
  commas only as thousands separators ("1,000,000"): "1,5e23" is an error, never 1.5e24 (see :func:`parse_quantity`).
"""

from __future__ import annotations

import math
import numbers
import re

from .errors import ScalePlanError

PF_DAY = 1e15 * 86_400.0  # FLOPs in one petaflop/s-day (Kaplan et al. 2020, Sec. 2.1)
GIB = float(2**30)
MIB = float(2**20)
GB = 1e9

SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9, "g": 1e9, "G": 1e9,
            "t": 1e12, "T": 1e12, "p": 1e15, "P": 1e15}

_D = "[0-9]"  # ASCII digits only
# sign, integer part (digits and separators), decimal part, exponent, optional space, suffix
_SHAPE = re.compile(r"^(?P<sign>[+-]?)(?P<int>[0-9,_]*)(?:\.(?P<frac>[0-9,_]*))?(?P<exp>[eE][+-]?[0-9,_]*)?"
                    r"\s*(?P<suf>[kKmMbBgGtTpP]?)$")
_GROUPED = {sep: re.compile(rf"^{_D}{{1,3}}(?:{re.escape(sep)}{_D}{{3}})+$") for sep in (",", "_")}
_EXP_OK = re.compile(rf"^[eE][+-]?{_D}+$")
_NONFINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
FLOPS_UNITS = {"flops": 1.0, "flop": 1.0, "pf-days": PF_DAY, "pf-day": PF_DAY, "pfdays": PF_DAY}


def parse_quantity(text: str | float | int, *, grouping: bool = True) -> float:
    """Parse a finite number that may carry a thousands separator or a size suffix.

    >>> parse_quantity("1.3B"), parse_quantity("350M"), parse_quantity("1,000,000"), parse_quantity("3e21")
    (1300000000.0, 350000000.0, 1000000.0, 3e+21)

    Accepted: ``[+-]digits[.digits][e[+-]digits][ ][suffix]`` with suffix k, M, B/G, T, P (case-insensitive), e.g.
    ``1.3B``, ``.5M``, ``2.5e3k``. The integer part may be grouped in threes by commas (``1,234,567``,
    ``1,234.5``, ``1,300M``) or, as in Python, by underscores (``1_000_000``), one kind per number. Anything else
    with a comma is rejected rather than guessed at, with the likely fix in the message: a decimal comma
    (``1,5e23``, ``3,4521``, ``1,00``, ``,5``: "use a dot as the decimal separator: 1.5e23"), bad grouping
    (``1,000,00``, ``1000,000``), or a grouped number with an exponent (``1,500e20``: ambiguous). With
    ``grouping=False`` (loss values, which never need a thousands separator) every comma is read as a decimal comma.

    Raises ``ValueError`` (not ScalePlanError: callers add the file/row/column context) when it is not a number or
    not finite (``nan``, ``inf``, ``1e400``).
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number")
    if isinstance(text, numbers.Real):
        v = float(text)
        if not math.isfinite(v):
            raise ValueError(f"{v!r} is not a finite number")
        return v
    raw = str(text)
    s = raw.strip()
    if s.lower() in _NONFINITE:
        raise ValueError(f"{raw!r} is not a finite number")
    m = _SHAPE.match(s)
    if not m or not any(ch.isdigit() for ch in (m.group("int") or "") + (m.group("frac") or "")):
        raise ValueError(f"{raw!r} is not a number{_shape_hint(s)}")
    ip, frac, exp, suf = m.group("int"), m.group("frac"), m.group("exp") or "", m.group("suf")
    if exp and not _EXP_OK.match(exp):
        raise ValueError(f"{raw!r} is not a number (bad exponent {exp!r}; write e.g. 1.5e23)")
    seps = {c for c in ip + (frac or "") if c in ",_"}
    if seps:
        if "," in seps and not grouping:
            raise ValueError(f"{raw!r} is not a number: {_comma_hint(s)}")
        if len(seps) > 1 or (frac and any(c in frac for c in ",_")) or not _GROUPED[seps.pop()].match(ip):
            hint = _comma_hint(s) if "," in s else "underscores may only separate groups of three digits (1_000_000)"
            raise ValueError(f"{raw!r} is not a number: {hint}")
        if exp and "," in ip:
            plain = m.group("sign") + ip.replace(",", "") + ("." + frac if frac is not None else "") + exp + suf
            alt = f" (or, for a decimal comma, {s.replace(',', '.')})" if s.count(",") == 1 else ""
            raise ValueError(f"{raw!r} is not a number: a thousands separator with an exponent is ambiguous; write "
                             f"{plain}{alt}")
        ip = ip.replace(",", "").replace("_", "")
    v = float(m.group("sign") + ip + ("." + frac if frac is not None else "") + exp) * SUFFIXES[suf]
    if not math.isfinite(v):
        raise ValueError(f"{raw!r} is out of range (not a finite number)")
    return v


def _comma_hint(s: str) -> str:
    """The likely fix for a number with a comma that is not a thousands separator."""
    if s.count(",") == 1 and "_" not in s:
        dotted = s.replace(",", ".")
        if _SHAPE.match(dotted) and dotted.count(".") == 1:
            return f"use a dot as the decimal separator: {dotted}"
        m = re.match(rf"^([+-]?{_D}{{1,3}}(?:\.{_D}{{3}})+),({_D}*)(.*)$", s)  # 1.234,5: dots group, comma decimal
        if m:
            return f"use a dot as the decimal separator and no thousands dots: {m[1].replace('.', '')}.{m[2]}{m[3]}"
    return "a comma may only separate groups of three digits (1,234,567); use a dot as the decimal separator"


def _shape_hint(s: str) -> str:
    if re.fullmatch(rf"[+-]?{_D}{{1,3}}(?: {_D}{{3}})+(?:\.{_D}*)?", s):
        return f" (remove the spaces: {s.replace(' ', '')})"
    return " (suffixes allowed: k, M, B, T, P)"


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
    if abs(x) >= 1e18:
        return f"{x:.{digits}g}"
    for div, suf in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.{digits}g}{suf}"
    return f"{x:.{digits}g}"


def is_finite_real(x) -> bool:
    """True for a finite real number (not None, bool, NaN, inf or complex)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def fmt_ci(ci, digits: int = 4) -> str:
    """A [low, high] interval as "[0.3171, 0.3734]" (``digits`` significant digits); "—" unless both ends are finite
    real numbers. The one format of the 95% intervals in the terminal view and the reports."""
    if not ci or len(ci) < 2 or not (is_finite_real(ci[0]) and is_finite_real(ci[1])):
        return "—"
    return f"[{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"
