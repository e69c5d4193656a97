"""Rich terminal renderers. Pure formatting: they take core results and return rich renderables."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .units import fmt_count


def _g(x, digits=4):
    if x is None:
        return "—"
    try:
        return f"{x:.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def laws_table(laws) -> Table:
    t = Table(title="Scaling-law catalogue", title_justify="left")
    t.caption = "scaleplan laws show NAME [--flops C | --params N --tokens D]"
    for c in ("name", "form", "a (N∝C^a)", "b (D∝C^b)", "N counts", "source"):
        t.add_column(c)
    for law in laws:
        ex = law.exponents()
        src = law.citation.get("paper", "").split(",")[0]
        t.add_row(law.name, law.form, _g(ex.get("a"), 3), _g(ex.get("b"), 3),
                  law.conventions.get("N", "?").split(" ")[0], Text(src))
    return t


def law_panel(law, out: dict) -> Panel:
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    rows.add_row("law", f"{law.name} — {law.title}")
    rows.add_row("form", law.summary())
    for k, v in law.params.items():
        ci = law.ci95.get(k)
        rows.add_row(f"  {k}", repr(v) + (f"   95% CI [{_g(ci[0])}, {_g(ci[1])}]" if ci else ""))
    if law.allocation:
        al = law.allocation
        k = f"k_N={al.get('k_N')}" if "k_N" in al else f"k_M={al.get('k_M')}"
        rows.add_row("allocation", f"{k}, a={al['a']}, k_D={al.get('k_D')}, b={al.get('b')} (C in "
                     f"{al.get('C_unit', 'FLOPs')})")
    for key, comp in law.components.items():
        rows.add_row(f"component {key}", f"{comp.get('title', '')}: {comp['params']}")
    ex = law.exponents()
    if ex:
        rows.add_row("exponents", f"a = {ex['a']:.4f} (N_opt ∝ C^a), b = {ex['b']:.4f}")
    for k, v in law.conventions.items():
        rows.add_row(f"convention {k}", str(v))
    cit = law.citation
    rows.add_row("source", ", ".join(str(v) for v in cit.values()))
    for note in law.notes:
        rows.add_row("note", Text(note))
    parts = [rows]
    if out.get("params") is not None:
        res = Table(title="prediction", title_justify="left")
        for c in ("FLOPs", "params N", "tokens D", "tokens/param", "loss"):
            res.add_column(c, justify="right")
        res.add_row(_g(out.get("flops"), 3), fmt_count(out["params"]), fmt_count(out.get("tokens")),
                    _g(out.get("tokens_per_param"), 3), _g(out.get("loss"), 4))
        parts.append(res)
    return Panel(Group(*parts), title=law.name, title_align="left")


def _ci(ci):
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"[{_g(ci[0])}, {_g(ci[1])}]"


def fit_view(rep) -> Group:
    """Rich tables for a FitReport: one per method, then skipped methods."""
    inp = rep.input
    head = Text(f"{inp['file']}: {inp.get('rows_used', inp['rows'])} rows, {inp['runs']} runs, N counts "
                f"{inp['param_count']} params; loss {rep.options.get('loss')} on log loss"
                + (f" (delta {rep.options.get('huber_delta'):g})" if rep.options.get('loss') != 'mse' else ""))
    parts = [head]
    for note in list(inp.get("derived", [])) + list(inp.get("warnings", [])):
        parts.append(Text(f"  note: {note}", style="yellow"))
    for f in rep.fits:
        t = Table(title=f"{f.method}  ({f.n_points} points" + (f", objective {f.objective:.10g}"
                  if f.objective is not None else "") + f", converged {'yes' if f.converged else 'NO'})",
                  title_justify="left")
        t.add_column("parameter")
        t.add_column("value", justify="right")
        t.add_column("95% CI (bootstrap)", justify="right")
        for k, v in f.params.items():
            t.add_row(k, _g(v, 6), _ci(f.ci95.get(k)))
        for k, v in f.derived.items():
            if isinstance(v, (int, float)) and k != "at_flops":
                t.add_row(Text(f"{k} (derived)", style="dim"), _g(v, 5), _ci(f.ci95.get(k)))
        if "at_flops" in f.derived:
            t.caption = f"derived N_opt/D_opt/loss at C = {f.derived['at_flops']:.3g} FLOPs"
        parts.append(t)
        info = f.info
        if f.method == "approach3":
            parts.append(Text(f"  {info['n_starts_at_best']} of {info['n_starts']} starts reached the best objective; "
                              f"{info['n_starts_converged']} converged; best start: {info['iterations_best']} "
                              f"iterations ({info['status_best']})", style="dim"))
            if info.get("note"):
                parts.append(Text("  " + info["note"], style="dim"))
        if f.method == "approach2":
            parts.append(Text(f"  {len(info['vertices'])} IsoFLOP vertices used", style="dim"))
        if f.holdout:
            h = f.holdout
            if "mean_abs_rel_error" in h:
                parts.append(Text(f"  holdout: fitted without {len(h['runs'])} largest-compute run(s); loss error on "
                                  f"them: mean {h['mean_abs_rel_error']:.2%}, max {h['max_abs_rel_error']:.2%}"))
            else:
                parts.append(Text(f"  holdout: {h.get('note')}", style="dim"))
        for w in f.warnings:
            parts.append(Text(f"  warning: {w}", style="yellow"))
    for m, why in rep.skipped.items():
        parts.append(Text(f"skipped {m}: {why}", style="dim"))
    return Group(*parts)
