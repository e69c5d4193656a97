"""Reports: self-contained HTML (jinja2, autoescaped, figures inline) and Markdown (figures beside it)."""

from __future__ import annotations

from pathlib import Path

from ...errors import ScalePlanError
from ...io.files import check_output_path

FORMATS = (".html", ".htm", ".md")


def check_report_path(path: Path, force: bool | None = None) -> None:
    """Check a ``--report`` path before any work; raise a one-line ScalePlanError naming it if it will not do.

    The extension picks the format (.html/.htm or .md); the directory must exist and be writable. With
    ``force=False`` neither the report nor, for Markdown, its figure folder ``NAME_files/`` (whose PNGs it would
    overwrite) may exist; ``force=True`` allows overwriting them. ``force=None`` (a caller that does not say) leaves
    the existence checks out; the report writers always make them, with the real ``force``, before writing.
    """
    import os

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ScalePlanError(f"--report {path}: the format follows the extension; use .html or .md (or .htm)")
    check_output_path(path, force, "--report")
    folder = path.with_name(path.stem + "_files") if path.suffix.lower() == ".md" else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise ScalePlanError(f"--report {path}: {folder} (where its figures go) exists and is not a directory")
    if force is None:
        return
    if folder is not None:
        if folder.exists() and not force:
            raise ScalePlanError(f"--report {path}: figure folder {folder} exists and its PNGs would be overwritten; "
                                 "pass --force to overwrite them")
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise ScalePlanError(f"--report {path}: figure folder {folder} is not writable")


def _write(build, obj, path: Path, command: str, force: bool) -> Path:
    """Check ``path`` (before any figure is drawn), build the report content with ``build(obj, command)`` and write
    it."""
    from .document import write

    check_report_path(Path(path), force=force)
    return write(build(obj, command), Path(path), force)


def write_fit_report(rep, path: Path, command: str = "", force: bool = False) -> Path:
    from .fit import fit_content

    return _write(fit_content, rep, path, command, force)


def write_memory_report(est, path: Path, command: str = "", force: bool = False) -> Path:
    from .memory import memory_content

    return _write(memory_content, est, path, command, force)


def write_plan_report(plan, path: Path, command: str = "", force: bool = False) -> Path:
    from .plan import plan_content

    return _write(plan_content, plan, path, command, force)


def write_grouped_fit_report(grep, path: Path, command: str = "", force: bool = False) -> Path:
    """The report of a GroupedFitReport (``fit --group-by``): the comparison of the groups, figures overlaying
    them, and each group's fits."""
    from .groups import grouped_fit_content

    return _write(grouped_fit_content, grep, path, command, force)
