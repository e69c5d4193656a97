"""User price tables (``--prices FILE``): JSON or TOML mapping GPU key or alias to $/GPU-hour."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ScalePlanError
from ..hardware import _norm


def load_prices(path: str | Path) -> dict[str, float]:
    """A user price table: JSON or TOML mapping GPU key/alias to $/GPU-hour."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScalePlanError(f"{p}: no such prices file") from None
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise ScalePlanError(f"{p}: TOML needs Python 3.11+; use a JSON prices file") from None
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, json.JSONDecodeError) as e:
        raise ScalePlanError(f"{p}: cannot parse prices ({e})") from None
    if not isinstance(data, dict):
        raise ScalePlanError(f"{p}: prices must map GPU names to $/GPU-hour")
    out = {}
    for k, v in data.items():
        if not isinstance(v, (int, float)) or v < 0:
            raise ScalePlanError(f"{p}: price for {k!r} must be a number >= 0")
        out[_norm(k)] = float(v)
    return out
