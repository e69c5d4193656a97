"""The report of ``fit --group-by``: what a GroupedFitReport holds, as a comparison of the groups at one budget, the
holdout side by side, figures overlaying the groups, and each group's fitted parameters (docs/fitting.md §3.8)."""

from __future__ import annotations

import math
import numbers

from ...units import fmt_ci, fmt_count
from .document import Figure, Report, Table

_EXPONENT_NAMES = {"a": "a", "b": "b", "alpha": "α", "beta": "β", "alpha_N": "α_N", "alpha_D": "α_D",
                   "alpha_C": "α_C"}


def _finite(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _val(v, digits: int = 4):
    """A number as shown in the tables; "—" when it is None or not a finite number."""
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, numbers.Number):
        return v
    return f"{v:.{digits}g}" if _finite(v) else "—"


def _with_ci(v, ci, count: bool = False, digits: int = 4) -> str:
    if not _finite(v):
        return "—"
    if count:
        lo_hi = f" [{fmt_count(ci[0])}, {fmt_count(ci[1])}]" if ci and all(_finite(c) for c in ci[:2]) else ""
        return fmt_count(v) + lo_hi
    c = fmt_ci(ci, digits)
    return f"{v:.{digits}g}" + ("" if c == "—" else f" {c}")


def _label(grep, group: str) -> str:
    keys = grep.keys.get(group)
    return ", ".join(keys.values()) if keys else group


def grouped_fit_content(grep, command: str = "") -> Report:
    """The report of a :class:`~scaling_planner.fitting.groups.GroupedFitReport`."""
    from ...fitting.registry import get as method_spec
    from . import plots

    inp = grep.input
    by = ", ".join(grep.by) or "group"
    at = grep.at_flops
    why = "set with --at-flops" if grep.at_flops_source == "--at-flops" else grep.at_flops_source
    rep = Report(title=f"Scaling-law fits by condition: {inp.get('file')}", command=command)
    rep.summary = [("file", inp.get("file")), ("grouped by", by),
                   ("groups fitted", f"{inp.get('groups_fitted')} of {inp.get('groups')}"),
                   ("methods fitted", ", ".join(grep.methods()))]
    if grep.where:
        rep.summary.append(("rows", f"where {grep.where}"))
    rep.summary.append(("N_opt, D_opt and loss at", f"C = {at:.3g} FLOPs ({why}), for every group and method"))
    if grep.skipped:
        rep.summary.append(("groups skipped", "; ".join(f"{g}: {w}" for g, w in grep.skipped.items())))
    derived = list(dict.fromkeys(n for r in grep.reports.values() for n in r.input.get("derived", [])))
    rep.inputs = [("file", inp.get("file")), ("sha256", inp.get("sha256")), ("rows in the file", inp.get("rows")),
                  ("rows used", inp.get("rows_used")), ("parameter convention", inp.get("param_count")),
                  ("derived", "; ".join(derived) or "none")]

    rows = grep.comparison()
    names = [k for k in _EXPONENT_NAMES if any(k in r["exponents"] for r in rows)]
    hold = any(r["holdout"] for r in rows)
    cols = [by, "method", "converged", *(f"{_EXPONENT_NAMES[k]} [95% CI]" for k in names), "N_opt [95% CI]",
            "D_opt [95% CI]", "tokens/param", "loss [95% CI]"] + (["holdout |rel. error| mean / max"] if hold else [])
    table = []
    for r in rows:
        ex, ci = r["exponents"], r["ci95"]
        cells = [_label(grep, r["group"]), r["method"], "yes" if r["converged"] else "no"]
        cells += [_with_ci(ex.get(k), ci.get(k), digits=3) if k in ex else "—" for k in names]
        cells += [_with_ci(r["N_opt"], ci.get("N_opt"), count=True), _with_ci(r["D_opt"], ci.get("D_opt"), count=True),
                  _val(r["tokens_per_param"], 3), _with_ci(r["loss"], ci.get("loss"))]
        if hold:
            h = r["holdout"] or {}
            cells.append(f"{h['mean_abs_rel_error']:.2%} / {h['max_abs_rel_error']:.2%}"
                         if _finite(h.get("mean_abs_rel_error")) else "—")  # why not: the holdout table
        table.append(cells)
    rep.tables.append(Table(f"Comparison of the groups at C = {at:.3g} FLOPs", cols, table,
                            "a, b: N_opt ∝ C^a, D_opt ∝ C^b; α, β: L = E + A/N^α + B/D^β; α_N, α_D, α_C: L ∝ X^-α_X. "
                            "N_opt, D_opt and loss (at the compute-optimal allocation) at the common budget; '—' where "
                            "a method reports none or its fit is not usable. Intervals: 95% bootstrap (runs "
                            "resampled)."))
    hrows = grep.holdout_table()
    if hrows:
        h0 = hrows[0]
        what = (f"the {h0['k']} largest-compute run(s)" if h0["by"] == "compute"
                else f"every run of the {h0['k']} largest model size(s)")
        rep.tables.append(Table(f"Holdout: each group refitted without {what}",
                                [by, "method", "held-out runs", "points", "mean |rel. error|", "max |rel. error|",
                                 "fitted up to C (FLOPs)", "fitted up to N"],
                                [[_label(grep, q["group"]), q["method"], q["runs"], _val(q["n_points"]),
                                  f"{q['mean_abs_rel_error']:.2%}" if _finite(q["mean_abs_rel_error"])
                                  else (q.get("note") or "—"),
                                  f"{q['max_abs_rel_error']:.2%}" if _finite(q["max_abs_rel_error"]) else "—",
                                  _val(q.get("max_train_flops"), 3), fmt_count(q.get("max_train_N"))]
                                 for q in hrows],
                                "Error of the loss each method's law predicts for the held-out runs (their final "
                                "points), fitted without them: how the law extrapolates."))
    for g, r in grep.reports.items():
        prow = []
        for f in r.fits:
            prow += [[f.method, k, _val(v, 6), fmt_ci(f.ci95.get(k), 4)] for k, v in f.params.items()]
            prow += [[f.method, f"{k} (derived)", _val(v, 5), fmt_ci(f.ci95.get(k), 4)] for k, v in f.derived.items()
                     if isinstance(v, (int, float)) and k != "at_flops"]
        note = "; ".join(f"{f.method}: {f.n_points} points, converged {'yes' if f.converged else 'no'}"
                         for f in r.fits)
        if r.skipped:
            note += "; skipped " + "; ".join(f"{m}: {w}" for m, w in r.skipped.items())
        rep.tables.append(Table(f"{g}: fitted parameters", ["method", "parameter", "value", "95% CI (bootstrap)"],
                                prow, note))
        for f in r.fits:
            rep.warnings += [f"{g} {f.method}: {w}" for w in f.warnings]
    rep.warnings += [f"group {g} skipped: {w}" for g, w in grep.skipped.items()]

    conv = (f"N counts {inp.get('param_count')} parameters; loss in the run log's units (nats/token unless "
            f"stated); colours: groups by {by}")
    shown = [m for m in grep.methods() if (s := method_spec(m)) is not None and s.frontier]
    for m in shown:
        rep.figures.append(Figure(plots.plot_groups(grep, m),
                                  f"{m} by group: N_opt(C) (left; bands: 95% bootstrap, drawn for up to 6 groups) "
                                  "and final losses against compute with the fit's loss along its compute-optimal "
                                  f"frontier or its optimum points (right); dotted: the common budget. {conv}.",
                                  f"{m} fits overlaid by group", f"groups_{m}"))
    if not shown:
        rep.figures.append(Figure(plots.plot_groups(grep, None), f"Final losses against compute by group. {conv}.",
                                  "losses by group", "groups_loss"))
    rep.assumptions = [(k, v) for k, v in grep.options.items()]
    return rep
