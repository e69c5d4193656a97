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

from .. import __version__
from ..errors import ScalePlanError
from ..units import GIB, fmt_count


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

    env = jinja2.Environment(loader=jinja2.PackageLoader("scaling_planner.report", "templates"),
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


# ----------------------------------------------------------------------------------------------- content builders
def _ci(ci):
    return "—" if not ci or ci[0] is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def fit_content(frep, command: str = "") -> Report:
    from ..laws import load_law
    from . import plots

    inp = frep.input
    conv = f"N counts {inp['param_count']} parameters; loss in the run log's units (nats/token unless stated)"
    rep = Report(title=f"Scaling-law fit: {inp['file']}", command=command)
    rep.summary = [("file", inp["file"]), ("rows used", inp.get("rows_used", inp["rows"])), ("runs", inp["runs"]),
                   ("methods fitted", ", ".join(f.method for f in frep.fits)),
                   ("methods skipped", "; ".join(f"{k}: {v}" for k, v in frep.skipped.items()) or "none")]
    import math
    import numbers

    def finite(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

    def val(v):  # a number that is not finite is never shown as if it were a value
        if finite(v) or not isinstance(v, numbers.Number):
            return v
        return "— (infinite)" if isinstance(v, float) and math.isinf(v) else "—"

    def ci(c):
        return _ci(c) if c and len(c) == 2 and finite(c[0]) and finite(c[1]) else "—"

    at = getattr(frep, "at_flops", None)
    if at is not None and any("at_flops" in f.derived for f in frep.fits):
        why = ("largest compute in the data; change with --at-flops" if getattr(frep, "at_flops_source", "") !=
               "--at-flops" else "set with --at-flops")
        rep.summary.append(("N_opt, D_opt and loss at", f"C = {at:.3g} FLOPs ({why}), for every method"))
    prim = frep.primary()
    if prim is not None and prim.converged and all(finite(prim.derived.get(k))
                                                   for k in ("N_opt", "D_opt", "tokens_per_param")):
        d = prim.derived
        rep.summary.append((f"{prim.method} at {d['at_flops']:.3g} FLOPs",
                            f"N_opt {fmt_count(d['N_opt'])}, D_opt {fmt_count(d['D_opt'])}, "
                            f"{d['tokens_per_param']:.1f} tokens/param"))
    bad = [f.method for f in frep.fits if not f.converged]
    if bad:
        rep.summary.append(("not usable (converged: no)", ", ".join(bad) + " — see warnings"))
    rep.inputs = [("file", inp["file"]), ("sha256", inp["sha256"]), ("columns", inp["columns"]),
                  ("parameter convention", inp["param_count"]), ("derived", "; ".join(inp["derived"]) or "none"),
                  ("N range", inp["N_range"]), ("C range (FLOPs)", inp["C_range"])]
    for f in frep.fits:
        rows = [[k, val(v), ci(f.ci95.get(k))] for k, v in f.params.items()]
        rows += [[f"{k} (derived)", val(v), ci(f.ci95.get(k))] for k, v in f.derived.items()
                 if isinstance(v, (int, float)) and k != "at_flops"]
        note = f"{f.n_points} points; objective {f.objective}; converged {f.converged}"
        if f.method == "approach3":
            note += (f"; {f.info['n_starts_at_best']} of {f.info['n_starts']} starts reached the best objective "
                     f"({f.info['loss']} on log loss, summed)")
        if f.holdout and "mean_abs_rel_error" in f.holdout:
            note += (f"; holdout of {len(f.holdout['runs'])} largest runs: mean |rel. error| "
                     f"{f.holdout['mean_abs_rel_error']:.2%}")
        rep.tables.append(Table(f"{f.method}", ["parameter", "value", "95% CI (bootstrap)"], rows, note))
        if f.holdout and f.holdout.get("points"):
            rep.tables.append(Table(f"{f.method}: held-out runs (fitted without them)",
                                    ["run", "N", "D", "loss", "predicted", "relative error"],
                                    [[q["run"], fmt_count(q["N"]), fmt_count(q["D"]), q["loss"], q["predicted"],
                                      f"{q['rel_error']:+.2%}"] for q in f.holdout["points"]]))
        rep.warnings += [f"{f.method}: {w}" for w in f.warnings]
        fig = None
        if not f.converged:  # a figure of an unusable law (negative exponents, overflow) would be nonsense
            if f.method in ("approach1", "approach2", "approach3", "kaplan_N", "kaplan_D", "kaplan_C"):
                rep.warnings.append(f"{f.method}: no figure, because the fit is not usable (converged: no)")
        elif f.method == "approach3":
            fig, cap = plots.plot_parametric(f), "Approach 3: runs (colour = log10 N), compute-optimal frontier " \
                                                 "with 95% bootstrap band, shaded extrapolation; residuals vs compute."
        elif f.method == "approach2":
            fig, cap = plots.plot_isoflop(f), "Approach 2: IsoFLOP parabolas and vertices; N_opt(C) power law."
        elif f.method == "approach1":
            fig, cap = plots.plot_envelope(f), "Approach 1: training curves, their envelope, and N_opt(C)."
        if fig is not None:
            rep.figures.append(Figure(fig, f"{cap} {conv}.", f"{f.method} fit figure", f.method))
    singles = [f for f in frep.fits if f.method in ("kaplan_N", "kaplan_D", "kaplan_C") and f.converged]
    if singles:
        rep.figures.insert(0, Figure(plots.plot_single(singles), "Kaplan single-variable power laws: selected points "
                                     "(best loss per size / per token count, compute frontier), all points in grey, the "
                                     f"fit with its 95% bootstrap band; shaded: extrapolation. {conv}.",
                                     "Kaplan power-law fits", "kaplan"))
    alloc = [f for f in frep.fits if f.method in ("approach1", "approach2", "approach3") and f.converged]
    if alloc:
        laws = [load_law(n) for n in ("kaplan2020", "chinchilla-approach1", "epoch2024")]
        t = frep.table
        rep.figures.append(Figure(plots.plot_frontier(alloc, laws, frep.options.get("at_flops"),
                                                      (t.C.min(), max(t.C.max() * 1e4, 1e24))),
                                  "Compute-optimal N and D: your fits (bands: 95% bootstrap) against Kaplan (non-"
                                  "embedding N), Chinchilla Approach 1 and Epoch (total N). " + conv + ".",
                                  "frontier comparison", "frontier"))
    rep.warnings += list(inp.get("warnings", []))
    rep.assumptions = [(k, v) for k, v in frep.options.items()]
    return rep


def fit_report(frep, path: Path, command: str = "", force: bool = False) -> Path:
    from . import check_report_path

    check_report_path(Path(path), force=force)  # before building the figures
    return write(fit_content(frep, command), path, force)


def memory_content(est, command: str = "") -> Report:
    from . import plots

    d = est.to_dict()
    rep = Report(title=f"Training memory: {est.shape.name}", command=command)
    rep.summary = [("model", est.shape.name), ("params (total / trainable)",
                                               f"{est.params_total:,} / {est.params_trainable:,}"),
                   (f"per-GPU {est.config.peak_kind} peak", f"{est.total_gib:.2f} GiB"),
                   ("peak phase", est.peak_phase)]
    if est.gpu_name:
        rep.summary.append(("GPU", f"{est.gpu_name}, {est.gpu_memory_gib:.1f} GiB usable: "
                            + ("fits" if est.fits else "does NOT fit")))
    rows = [[k, f"{v:.3f}"] for k, v in d["per_gpu_gib"].items()]
    rep.tables.append(Table("per-GPU breakdown (GiB)", ["component", "GiB"], rows))
    if est.suggestions:
        rep.tables.append(Table("changes", ["change", "device GiB", "fits"],
                                [[s["change"], s["total_gib"], s["fits"]] for s in est.suggestions]))
    labels = ["this config"] + [s["change"] for s in est.suggestions]
    bds = [{k: v / GIB for k, v in est.breakdown.items()}] + [s["breakdown_gib"] for s in est.suggestions]
    rep.figures.append(Figure(plots.plot_memory_bars(labels, bds, est.gpu_memory_gib, "per-GPU memory and what-ifs"),
                              "Stacked per-GPU device memory (GiB = 2^30 B) at the peak phase of this configuration "
                              "and of each suggested change; dashed line: the GPU's usable memory.",
                              "memory breakdown bar chart", "memory"))
    rep.assumptions = [(k, v) for k, v in d["assumptions"].items()]
    return rep


def memory_report(est, path: Path, command: str = "", force: bool = False) -> Path:
    from . import check_report_path

    check_report_path(Path(path), force=force)  # before building the figures
    return write(memory_content(est, command), path, force)


def plan_content(plan, command: str = "") -> Report:
    from . import plots

    d = plan.to_dict()
    rep = Report(title=f"Training plan: {d['flops']:.3g} FLOPs on {plan.gpu.name}", command=command)
    L = d["layout"]
    rep.summary = [("law", d["law"]), ("params", f"{fmt_count(d['params'])}"), ("tokens", fmt_count(d["tokens"])),
                   ("tokens/param", f"{d['tokens_per_param']:.1f}"), ("predicted loss", d["loss"]),
                   ("GPUs", f"{L['gpus']} x {plan.gpu.name}"),
                   ("layout", f"TP {L['tp']} x PP {L['pp']} x DP {L['dp']}, ZeRO-{L['zero_stage']}, "
                              f"micro-batch {L['micro_batch']} x accumulation {L['grad_accum']}"),
                   ("wall-clock", f"{d['days']:.1f} days"), ("GPU-hours", f"{d['gpu_hours']:,.0f}"),
                   ("cost", "—" if d["cost_usd"] is None else f"${d['cost_usd']:,.0f}"),
                   ("MFU / goodput", f"{d['mfu']:.2f} / {d['goodput']:.2f} ({d['mfu_counts']})")]
    if d["interval"]:
        iv = d["interval"]
        rep.summary.append(("95% interval (law samples)", f"params {fmt_count(iv['params'][0])}–"
                            f"{fmt_count(iv['params'][1])}, tokens {fmt_count(iv['tokens'][0])}–"
                            f"{fmt_count(iv['tokens'][1])}"))
    s = d["shape"]
    rep.tables.append(Table("model shape", list(s), [list(s.values())]))
    rep.tables.append(Table("the same budget under other laws", ["law", "params", "tokens", "tokens/param", "loss"],
                            [[d["law"], fmt_count(d["params"]), fmt_count(d["tokens"]), d["tokens_per_param"],
                              d["loss"]]] +
                            [[c["law"], fmt_count(c["params"]), fmt_count(c["tokens"]), c["tokens_per_param"],
                              c["loss"]] for c in d["comparison"]]))
    rep.tables.append(Table("layouts", ["", "TP", "PP", "DP", "ZeRO", "micro-batch", "recompute", "GiB/GPU", "days",
                                        "note"],
                            [["chosen", L["tp"], L["pp"], L["dp"], L["zero_stage"], L["micro_batch"], L["recompute"],
                              L["memory_per_gpu_gib"], d["days"], "best predicted throughput"]] +
                            [["alternative", a["tp"], a["pp"], a["dp"], a["zero_stage"], a["micro_batch"],
                              a["recompute"], a["memory_per_gpu_gib"], a["days"], a["why_lost"]]
                             for a in d["alternatives"]]))
    # figures: memory per layout, time and cost vs GPUs
    from ..memory import MemoryConfig, estimate_memory

    labels, bds = [], []
    for tag, lay in [("chosen", L)] + [(f"alt {i + 1}", a) for i, a in enumerate(d["alternatives"])]:
        est = estimate_memory(plan.shape, MemoryConfig(framework="megatron", gpus=lay["gpus"], tp=lay["tp"],
                                                       pp=lay["pp"], dp=lay["dp"], zero=lay["zero_stage"],
                                                       sp=lay["sequence_parallel"], seq_len=plan.seq_len,
                                                       micro_batch=lay["micro_batch"], grad_accum=lay["grad_accum"],
                                                       recompute=lay["recompute"]), plan.gpu, suggest=False)
        labels.append(f"{tag}: TP{lay['tp']} PP{lay['pp']} Z{lay['zero_stage']} mb{lay['micro_batch']}")
        bds.append({k: v / GIB for k, v in est.breakdown.items()})
    rep.figures.append(Figure(plots.plot_memory_bars(labels, bds, plan.gpu.memory_gib, "per-GPU memory by layout"),
                              "Per-GPU device memory (GiB) of the chosen and alternative layouts at their peak "
                              "phase; dashed: usable memory.", "memory per layout", "plan_memory"))
    counts, days, costs = _scan_gpus(plan)
    rep.figures.append(Figure(plots.plot_time_cost(counts, days, costs, L["gpus"]),
                              "Wall-clock days and cost vs GPU count, best layout at each count (MFU scaled by the "
                              "throughput model; same goodput).", "time and cost vs GPUs", "plan_time"))
    rep.warnings = list(d["notes"])
    rep.assumptions = [(k, v) for k, v in d["assumptions"].items()]
    return rep


def _scan_gpus(plan):
    from ..planner import search_layouts

    g = plan.gpu
    base = plan.layout.gpus
    counts = sorted({max(8, int(base * f) // 8 * 8) for f in (0.25, 0.5, 1, 2, 4)} | {base})
    peak = g.peak_tflops("bf16") * 1e12
    best_eff = plan.layout.efficiency
    out_c, out_d, out_cost = [], [], []
    for n in counts:
        lays = search_layouts(plan.shape, g, n, plan.global_batch, plan.seq_len, plan.mfu,
                              plan.assumptions["gpus_per_node"], max_results=1)
        if not lays:
            continue
        mfu = plan.mfu * lays[0].efficiency / best_eff
        dd = plan.flops / (n * peak * mfu * plan.goodput) / 86400
        out_c.append(n)
        out_d.append(dd)
        out_cost.append(None if plan.price is None else dd * 24 * n * plan.price)
    return out_c, out_d, out_cost


def plan_report(plan, path: Path, command: str = "", force: bool = False) -> Path:
    from . import check_report_path

    check_report_path(Path(path), force=force)  # before building the figures
    return write(plan_content(plan, command), path, force)
