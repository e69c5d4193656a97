"""Reports: self-contained HTML (jinja2, autoescaped, figures inline) and Markdown (figures beside it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ScalePlanError

FORMATS = (".html", ".htm", ".md")


def check_report_path(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise ScalePlanError(f"--report {path}: the format follows the extension; use .html or .md")


def write_fit_report(rep, path: Path, command: str = "", force: bool = False) -> Path:
    from .build import fit_report

    return fit_report(rep, Path(path), command=command, force=force)


def write_memory_report(est, path: Path, command: str = "", force: bool = False) -> Path:
    from .build import memory_report

    return memory_report(est, Path(path), command=command, force=force)


def write_plan_report(plan, path: Path, command: str = "", force: bool = False) -> Path:
    from .build import plan_report

    return plan_report(plan, Path(path), command=command, force=force)
