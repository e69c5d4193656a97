"""Build reports: a small content model (summary, inputs, tables, figures, warnings, assumptions, command) rendered
to one self-contained HTML file (jinja2 with autoescaping, figures as inline base64 PNG, CSS inline, no external
URLs) or to Markdown with the figures as PNG files in a folder beside it."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from ... import __version__
from ...errors import ScalePlanError


@dataclass
class Figure:
    fig: object
    caption: str
    alt: str
    name: str


@dataclass
class Table:
    title: str
    columns: list
    rows: list
    note: str = ""


@dataclass
class Report:
    title: str
    summary: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    assumptions: list = field(default_factory=list)
    command: str = ""


def _png(fig) -> bytes:
    """PNG bytes of a figure, rendered off-screen; a figure that pyplot manages is closed afterwards."""
    import sys

    from .plots import to_png

    data = to_png(fig)
    if "matplotlib.pyplot" in sys.modules:  # our figures are not pyplot's; close any that a caller made with it
        sys.modules["matplotlib.pyplot"].close(fig)
    return data


def _notes(rep: Report) -> list[str]:
    """What the figures left out (curves or bands with non-finite values), as warnings."""
    return [f"figure '{f.name}': {n}" for f in rep.figures for n in getattr(f.fig, "notes", None) or []]


def _caption(f: Figure) -> str:
    notes = getattr(f.fig, "notes", None) or []
    return f.caption + (" Not drawn or partly drawn: " + "; ".join(notes) + "." if notes else "")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


def render_html(rep: Report) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("scaling_planner.render.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    figs = [{"data": base64.b64encode(_png(f.fig)).decode("ascii"), "caption": _caption(f), "alt": f.alt}
            for f in rep.figures]
    return env.get_template("report.html.j2").render(
        title=rep.title, version=__version__, date=_dt.date.today().isoformat(),
        summary=[(k, _fmt(v)) for k, v in rep.summary], inputs=[(k, _fmt(v)) for k, v in rep.inputs],
        tables=[{"title": t.title, "columns": t.columns, "rows": [[_fmt(c) for c in r] for r in t.rows],
                 "note": t.note} for t in rep.tables],
        figures=figs, warnings=list(rep.warnings) + _notes(rep), assumptions=[(k, _fmt(v)) for k, v in rep.assumptions],
        command=rep.command)


def _md(text) -> str:
    """Escape user text for Markdown: HTML is passed through by renderers, so escape it; protect table pipes."""
    return html.escape(_fmt(text), quote=False).replace("|", "\\|").replace("\n", " ")


def figure_folder(path: Path) -> Path:
    """Where a Markdown report's figures go: ``NAME_files/`` beside ``NAME.md``."""
    path = Path(path)
    return path.with_name(path.stem + "_files")


def render_markdown(rep: Report, path: Path) -> str:
    """The Markdown text; writes the figures as PNG files into ``figure_folder(path)`` (created if needed). Callers
    check for existing files first (``check_report_path(path, force)``)."""
    folder = figure_folder(path)
    if rep.figures:
        folder.mkdir(exist_ok=True)
    out = [f"# {_md(rep.title)}", "", f"_scaleplan {__version__} · generated {_dt.date.today().isoformat()}_", "",
           "## Summary", "", "| | |", "|---|---|"]
    out += [f"| {_md(k)} | {_md(v)} |" for k, v in rep.summary]
    if rep.inputs:
        out += ["", "## Inputs", "", "| | |", "|---|---|"] + [f"| {_md(k)} | {_md(v)} |" for k, v in rep.inputs]
    for t in rep.tables:
        out += ["", f"## {_md(t.title)}", "", "| " + " | ".join(_md(c) for c in t.columns) + " |",
                "|" + "---|" * len(t.columns)]
        out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in t.rows]
        if t.note:
            out += ["", f"_{_md(t.note)}_"]
    if rep.figures:
        out += ["", "## Figures", ""]
        for f in rep.figures:
            fname = f"{f.name}.png"
            (folder / fname).write_bytes(_png(f.fig))
            out += [f"![{_md(f.alt)}]({folder.name}/{fname})", "", f"*{_md(_caption(f))}*", ""]
    warnings = list(rep.warnings) + _notes(rep)
    if warnings:
        out += ["", "## Warnings", ""] + [f"- {_md(w)}" for w in warnings]
    out += ["", "## Assumptions", "", "| | |", "|---|---|"] + [f"| {_md(k)} | {_md(v)} |" for k, v in rep.assumptions]
    out += ["", "## Reproduce", "", "```", rep.command, "```", ""]
    return "\n".join(out)


def write(rep: Report, path: Path, force: bool = False) -> Path:
    """Write ``rep`` as HTML (.html/.htm) or Markdown (.md, figures in ``NAME_files/``). Without ``force`` an existing
    report, figure folder or figure file is an error, checked before anything is written."""
    from . import check_report_path

    path = Path(path)
    check_report_path(path, force=force)
    if path.suffix.lower() == ".md" and not force:
        folder = figure_folder(path)
        for f in rep.figures:
            if (folder / f"{f.name}.png").exists():
                raise ScalePlanError(f"--report {path}: {folder / f'{f.name}.png'} exists; pass --force to "
                                     "overwrite it")
    if path.suffix.lower() in (".html", ".htm"):
        text = render_html(rep)
    else:
        text = render_markdown(rep, path)
    path.write_text(text, encoding="utf-8")
    return path
