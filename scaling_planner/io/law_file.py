"""Law files: the catalogue of published laws (``fits/*.json``) and laws saved by ``scaleplan fit --save``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ScalePlanError, unknown_name
from ..laws import ScalingLaw
from .files import read_json


def catalogue_dir() -> Path:
    """The folder of published laws: inside the installed package, or ``fits/`` in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "fits", here.parent / "fits"):
        if cand.is_dir() and any(cand.glob("*.json")):
            return cand
    raise ScalePlanError("the law catalogue (fits/*.json) is missing from this installation; reinstall scaleplan")


def list_laws() -> list[ScalingLaw]:
    return [read_law(p) for p in sorted(catalogue_dir().glob("*.json"))]


def law_names() -> list[str]:
    return sorted(p.stem for p in catalogue_dir().glob("*.json"))


def read_law(path: str | Path) -> ScalingLaw:
    return ScalingLaw.from_dict(read_json(path, "law file"), source=str(path))


def load_law(name_or_path: str) -> ScalingLaw:
    """A catalogue law by name (``epoch2024``), or a law file written by ``scaleplan fit --save``."""
    if name_or_path.endswith(".json") or "/" in name_or_path or Path(name_or_path).is_file():
        return read_law(name_or_path)
    path = catalogue_dir() / f"{name_or_path}.json"
    if path.exists():
        return read_law(path)
    raise unknown_name("law", name_or_path, law_names())


def save_law(law: ScalingLaw, path: str | Path, force: bool = False) -> Path:
    """Write ``law`` as JSON (the ``fits/*.json`` format); an existing file needs ``force``."""
    p = Path(path)
    if p.exists() and not force:
        raise ScalePlanError(f"{p} exists; pass --force to overwrite it")
    p.write_text(json.dumps(law.to_dict(), indent=2) + "\n", encoding="utf-8")
    return p
