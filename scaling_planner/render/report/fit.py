"""The fit report: what a FitReport holds, as summary, tables, figures and warnings."""

from __future__ import annotations

from ...units import fmt_ci, fmt_count
from .document import Figure, Report, Table

# the published laws the report's compute-optimal figure compares the fits against
FRONTIER_LAWS = ("kaplan2020", "chinchilla-approach1", "epoch2024")


def fit_content(frep, command: str = "") -> Report:
    """The fit report of a FitReport: what each method's spec (fitting/registry.py) says to show of its fit."""
    from ...fitting.registry import get as method_spec
    from ...io.law_file import load_law
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
        return fmt_ci(c, 4)

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
        spec = method_spec(f.method)
        note = f"{f.n_points} points; objective {f.objective}; converged {f.converged}"
        if spec is not None and spec.notes is not None:
            note += "".join(f"; {line}" for line in spec.notes(f))
        if f.holdout and "mean_abs_rel_error" in f.holdout:
            note += (f"; holdout of {len(f.holdout['runs'])} largest runs (by {f.holdout.get('by', 'compute')}): "
                     f"mean |rel. error| {f.holdout['mean_abs_rel_error']:.2%}")
        rep.tables.append(Table(f"{f.method}", ["parameter", "value", "95% CI (bootstrap)"], rows, note))
        if f.holdout and f.holdout.get("points"):
            rep.tables.append(Table(f"{f.method}: held-out runs (fitted without them)",
                                    ["run", "N", "D", "loss", "predicted", "relative error"],
                                    [[q["run"], fmt_count(q["N"]), fmt_count(q["D"]), q["loss"], q["predicted"],
                                      f"{q['rel_error']:+.2%}"] for q in f.holdout["points"]]))
        rep.warnings += [f"{f.method}: {w}" for w in f.warnings]
        fig = spec.figure if spec is not None else None
        if fig is not None and not f.converged:  # a figure of an unusable law (negative exponents) would be nonsense
            rep.warnings.append(f"{f.method}: no figure, because the fit is not usable (converged: no)")
        elif fig is not None and not fig.combined:
            rep.figures.append(Figure(plots.fit_figure(fig, [f]), f"{fig.caption} {conv}.",
                                      fig.title or f"{f.method} fit figure", fig.key or f.method))
    combined: dict = {}  # figures shared by several methods (one panel each), in the order of the fits
    for f in frep.fits:
        spec = method_spec(f.method)
        if spec is not None and spec.figure is not None and spec.figure.combined and f.converged:
            combined.setdefault(spec.figure, []).append(f)
    for i, (fig, group) in enumerate(combined.items()):
        rep.figures.insert(i, Figure(plots.fit_figure(fig, group), f"{fig.caption} {conv}.",
                                     fig.title or f"{group[0].method} fit figure", fig.key or group[0].method))
    hold = frep.holdout_table() if hasattr(frep, "holdout_table") else []
    if hold:  # every method's extrapolation error side by side, before the per-method tables
        h0 = hold[0]
        what = (f"the {h0['k']} largest-compute run(s)" if h0["by"] == "compute"
                else f"every run of the {h0['k']} largest model size(s)")
        rep.tables.insert(0, Table(
            f"Holdout: each method refitted without {what}",
            ["method", "held-out runs", "points", "mean |rel. error|", "max |rel. error|", "fitted up to C (FLOPs)",
             "fitted up to N"],
            [[r["method"], r["runs"], r["n_points"] if r["n_points"] is not None else "—",
              f"{r['mean_abs_rel_error']:.2%}" if finite(r["mean_abs_rel_error"]) else (r["note"] or "—"),
              f"{r['max_abs_rel_error']:.2%}" if finite(r["max_abs_rel_error"]) else "—",
              val(r["max_train_flops"]) if r["max_train_flops"] is not None else "—",
              fmt_count(r["max_train_N"])] for r in hold],
            "Error of the loss each method's law predicts for the held-out runs (their final points), fitted "
            "without them: how each law extrapolates (docs/fitting.md §3.6)."))
    alloc = [f for f in frep.fits if (s := method_spec(f.method)) is not None and s.frontier and f.converged]
    if alloc:
        laws = [load_law(n) for n in FRONTIER_LAWS]
        t = frep.table
        rep.figures.append(Figure(plots.plot_frontier(alloc, laws, frep.options.get("at_flops"),
                                                      (t.C.min(), max(t.C.max() * 1e4, 1e24))),
                                  "Compute-optimal N and D: your fits (bands: 95% bootstrap) against Kaplan (non-"
                                  "embedding N), Chinchilla Approach 1 and Epoch (total N). " + conv + ".",
                                  "frontier comparison", "frontier"))
    rep.warnings += list(inp.get("warnings", []))
    rep.assumptions = [(k, v) for k, v in frep.options.items()]
    return rep
