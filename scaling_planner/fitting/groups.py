"""One fit per condition: ``fit_groups(tables) -> GroupedFitReport`` and the comparison of the conditions at one
budget (docs/fitting.md §3.8).

A run log often holds several conditions (data sets, schedules, hyper-parameters, parameter-counting rules); a law
fitted across them mixes them. ``fit_groups`` fits each group (a ``{name: RunTable}``, e.g. from
:func:`scaling_planner.io.runlog.load_run_groups`) on its own with the same options, and compares what each method
reports: its exponents and N_opt, D_opt and loss at **one** budget common to every group (``at_flops``, default the
largest compute across all groups), with their 95% bootstrap intervals. A group that cannot be fitted is skipped with
the reason; only when none can be fitted is that an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ScalePlanError
from .result import FitReport, _clean

# what the comparison shows of each fit, when the method reports it (params first, then derived numbers)
EXPONENTS = ("a", "b", "alpha", "beta", "alpha_N", "alpha_D", "alpha_C")  # a, b: N_opt ∝ C^a, D_opt ∝ C^b
AT_BUDGET = ("N_opt", "D_opt", "tokens_per_param", "loss_opt")  # at the common budget; loss_opt is shown as "loss"
MIN_GROUP_RUNS = 3  # scaleplan: no method fits fewer runs (approach2 needs 2 budgets of 3 sizes, approach3 5 params)
COMMON_BUDGET = "largest compute across all groups"


@dataclass(frozen=True)
class GroupedFitReport:
    """The fits of every group (``reports``: group name -> :class:`FitReport`, each as ``fit`` returns it, with
    ``options["group"]``), the groups skipped and why, and the comparison at one budget.

    ``by``: the grouping columns; ``keys``: group name -> {column: value}; ``where``: the row filter (or None);
    ``at_flops``: the common budget (FLOPs) at which every group's every method reports N_opt, D_opt and loss."""

    reports: Mapping[str, FitReport]
    skipped: dict[str, str] = field(default_factory=dict)
    by: tuple[str, ...] = ()
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    where: str | None = None
    at_flops: float | None = None
    at_flops_source: str = ""
    input: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def get(self, group: str) -> FitReport | None:
        return self.reports.get(group)

    @property
    def groups(self) -> list[str]:
        return list(self.reports)

    def methods(self) -> list[str]:
        """The methods fitted in any group, in the registry's order."""
        from .registry import names

        seen = {f.method for r in self.reports.values() for f in r.fits}
        return [m for m in names() if m in seen] + sorted(seen - set(names()))

    def comparison(self) -> list[dict]:
        """One row per group and method: ``group``, ``keys``, ``method``, ``converged``, ``n_points``, ``exponents``
        ({name: value} of :data:`EXPONENTS` the method reports), ``at_flops``, ``N_opt``, ``D_opt``,
        ``tokens_per_param``, ``loss`` (at the common budget; None where the method reports none or the fit is not
        usable), ``ci95`` ({name: [lo, hi]} for those of them with a bootstrap interval; ``loss`` for loss_opt) and
        ``holdout`` ({by, mean_abs_rel_error, max_abs_rel_error, note} or None)."""
        rows = []
        for group, rep in self.reports.items():
            for f in rep.fits:
                ex = {}
                for k in EXPONENTS:
                    v = f.params.get(k, f.derived.get(k))
                    if isinstance(v, (int, float)):
                        ex[k] = float(v)
                at = {k: f.derived.get(k) for k in AT_BUDGET}
                ci = {k: list(f.ci95[k]) for k in ex if k in f.ci95}
                ci.update({("loss" if k == "loss_opt" else k): list(f.ci95[k]) for k in AT_BUDGET if k in f.ci95})
                h = f.holdout
                rows.append({"group": group, "keys": dict(self.keys.get(group, {})), "method": f.method,
                             "converged": bool(f.converged), "n_points": int(f.n_points), "exponents": ex,
                             "at_flops": f.derived.get("at_flops", self.at_flops), "N_opt": at["N_opt"],
                             "D_opt": at["D_opt"], "tokens_per_param": at["tokens_per_param"],
                             "loss": at["loss_opt"], "ci95": ci,
                             "holdout": None if not h else {
                                 "by": h.get("by", "compute"), "k": h.get("k"), "runs": len(h.get("runs", [])),
                                 "mean_abs_rel_error": h.get("mean_abs_rel_error"),
                                 "max_abs_rel_error": h.get("max_abs_rel_error"), "note": h.get("note")}})
        return rows

    def holdout_table(self) -> list[dict]:
        """Every group's :meth:`FitReport.holdout_table` rows, each with its ``group``."""
        return [{"group": g, **row} for g, rep in self.reports.items() for row in rep.holdout_table()]

    def to_dict(self) -> dict:
        """``{"input", "group_by", "where", "at_flops", "at_flops_source", "groups": {name: {"condition", <the
        single-fit JSON: input, fits, skipped, options, at_flops, at_flops_source, holdout>}}, "skipped_groups",
        "comparison", "holdout", "options"}``."""
        k = self.options.get("holdout")
        return {"input": _clean(self.input), "group_by": list(self.by), "where": self.where,
                "at_flops": _clean(self.at_flops), "at_flops_source": self.at_flops_source or None,
                "groups": {g: {"condition": dict(self.keys.get(g, {})), **rep.to_dict()}
                           for g, rep in self.reports.items()},
                "skipped_groups": dict(self.skipped), "comparison": _clean(self.comparison()),
                "holdout": None if not k else {"k": int(k), "by": self.options.get("holdout_by", "compute"),
                                               "methods": _clean(self.holdout_table())},
                "options": _clean(self.options)}

    def to_laws(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """({group: ScalingLaw}, {group: why no law}): each group's primary fit as a law (``FitReport.to_law``)
        named ``name`` (one group) or ``name.<group slug>``, its title naming the group."""
        from ..io.conditions import group_slug

        laws, missing = {}, {}
        for group, rep in self.reports.items():
            law_name = name if len(self.reports) + len(self.skipped) == 1 else f"{name}.{group_slug(group)}"
            try:
                law = rep.to_law(law_name)
            except ScalePlanError as e:
                missing[group] = str(e)
                continue
            laws[group] = replace(law, title=f"{law.title} [{group}]")
        return laws, missing

    def summary(self) -> str:
        """The comparison as plain text: one line per group and method."""
        from ..units import fmt_count

        def g(v, d=4):
            return "—" if v is None else f"{v:.{d}g}"

        by = f" by {', '.join(self.by)}" if self.by else ""
        lines = [f"{len(self.reports)} groups{by}; N_opt, D_opt and loss at C = {g(self.at_flops, 3)} FLOPs"]
        for r in self.comparison():
            ex = ", ".join(f"{k}={v:.4g}" for k, v in r["exponents"].items())
            lines.append(f"  {r['group']}  {r['method']}: {ex}; N_opt={fmt_count(r['N_opt'])} loss={g(r['loss'])}"
                         + ("" if r["converged"] else "  (not usable)"))
        lines += [f"  skipped {k}: {v}" for k, v in self.skipped.items()]
        return "\n".join(lines)


def common_budget(tables: Mapping[str, Any], at_flops: float | None) -> tuple[float, str]:
    """(C, why): the one budget (FLOPs) at which every group's every method reports N_opt, D_opt and loss:
    ``at_flops`` when given, else the largest compute across all groups (so that no group is compared at a budget
    it was not asked about, and each group's numbers are comparable)."""
    if at_flops is not None:
        return float(at_flops), "--at-flops"
    return max(float(t.C.max()) for t in tables.values()), COMMON_BUDGET


def _fit_defaults() -> dict:
    import inspect

    from . import fit

    return {k: p.default for k, p in inspect.signature(fit).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "progress"}


def _check(methods, kw: dict) -> None:
    """The options every group shares, checked once (so that a bad option is its own error, not every group's)."""
    from . import HOLDOUT_BY, _check_options, _spec
    from .objective import LOSSES

    unknown = set(kw) - set(_fit_defaults())
    if unknown:
        raise TypeError(f"fit_groups() got unexpected keyword argument(s) {', '.join(sorted(unknown))}")
    o = {**_fit_defaults(), **kw}
    if o["loss"] not in LOSSES:
        raise ScalePlanError(f"loss must be one of {', '.join(LOSSES)}, got {o['loss']!r}", param="loss")
    import inspect

    _check_options(**{k: o[k] for k in inspect.signature(_check_options).parameters if k in o})
    if o["holdout_by"] not in HOLDOUT_BY:
        raise ScalePlanError(f"holdout_by must be one of {', '.join(HOLDOUT_BY)}, got {o['holdout_by']!r}",
                             param="holdout_by")
    for m in methods or ():
        _spec(m, "methods")


def fit_groups(tables: Mapping[str, Any], methods: Sequence[str] | None = None, *,
               progress: Callable[[str, int, int], None] | None = None, by: Sequence[str] | None = None,
               conditions: Mapping[str, Mapping[str, str]] | None = None, where: str | None = None,
               **kw) -> GroupedFitReport:
    """Fit every group of ``tables`` ({name: RunTable}, e.g. :func:`~scaling_planner.io.runlog.load_run_groups`)
    with :func:`~scaling_planner.fitting.fit` and the same options (``methods`` and ``**kw``: ``bootstrap``,
    ``holdout``, ``holdout_by``, ``at_flops``, ...).

    Every group reports N_opt, D_opt and loss at one budget: ``at_flops``, or else the largest compute across all
    groups. A group with fewer than ``MIN_GROUP_RUNS`` runs, or that ``fit`` refuses, is skipped with the reason
    (``GroupedFitReport.skipped``; groups ``load_run_groups`` could not read come in as ``tables.skipped``); when no
    group can be fitted, the error names each group's reason (a single group's error is raised as it is).
    ``progress(label, done, total)`` is ``fit``'s progress with the group in the label. ``by`` (the grouping columns),
    ``conditions`` ({name: {column: value}}) and ``where`` default to the attributes of a ``RunGroups``."""
    from . import _progress_callback, fit

    if not isinstance(tables, Mapping):
        raise ScalePlanError("tables must be a mapping of group name to RunTable (e.g. load_run_groups(...))",
                             param="tables")
    pre_skipped = dict(getattr(tables, "skipped", {}) or {})
    if not tables and not pre_skipped:
        raise ScalePlanError("tables is empty: no group to fit", param="tables")
    methods = None if methods is None else list(methods)
    _check(methods, kw)
    at_flops = kw.pop("at_flops", None)
    by = tuple(by if by is not None else getattr(tables, "by", ()))
    if conditions is None:
        conditions = getattr(tables, "conditions", None) or {}
    keys = {g: dict(v) for g, v in conditions.items()}
    where = where if where is not None else getattr(tables, "where", None)
    common, source = common_budget(tables, at_flops)
    progress = _progress_callback(progress)
    reports: dict[str, FitReport] = {}
    skipped: dict[str, str] = {}
    errors: dict[str, ScalePlanError] = {}
    n = len(tables)
    for i, (group, table) in enumerate(tables.items(), start=1):
        if table.n_runs < MIN_GROUP_RUNS:
            skipped[group] = (f"only {table.n_runs} run(s); at least {MIN_GROUP_RUNS} are needed to fit a law")
            continue
        cb = None if progress is None else (lambda m, d, t, g=group, i=i: progress(f"{m} [{g}, {i}/{n}]", d, t))
        try:
            rep = fit(table, methods, at_flops=common, progress=cb, **kw)
        except ScalePlanError as e:
            skipped[group] = str(e)
            errors[group] = e
            continue
        reports[group] = replace(rep, at_flops_source=source, options={
            **rep.options, "at_flops": at_flops, "group": group, "group_by": list(by), "where": where})
    skipped.update(pre_skipped)
    if not reports:
        if n == 1 and errors:
            raise next(iter(errors.values()))
        params = {e.param for e in errors.values()}
        shown = list(skipped.items())
        reasons = {why for _, why in shown}
        if len(reasons) == 1 and len(shown) > 1:  # the same reason everywhere: say it once
            text = f"every one of the {len(shown)} groups: {reasons.pop()}"
        else:
            text = "; ".join(f"{g}: {why}" for g, why in shown[:4]) + (f"; ... ({len(shown) - 4} more)"
                                                                       if len(shown) > 4 else "")
        raise ScalePlanError(f"no group could be fitted: {text}",
                             param=params.pop() if len(params) == 1 and len(errors) == len(skipped) else None)
    first = next(iter(tables.values()))
    rows = getattr(tables, "rows", 0) or None
    inp = {"file": first.source, "sha256": first.sha256, "rows": rows, "param_count": first.param_count,
           "where": where, "group_by": list(by), "groups": n + len(pre_skipped), "groups_fitted": len(reports),
           "rows_used": sum(len(t) for t in tables.values())}
    options = {k: v for k, v in next(iter(reports.values())).options.items() if k != "group"}
    return GroupedFitReport(reports=reports, skipped=skipped, by=by, keys=keys, where=where, at_flops=common,
                            at_flops_source=source, input=inp, options=options)
