"""Fitting scaling laws to a RunTable: ``fit(table, methods=...) -> FitReport``.

Methods (each declared by a :class:`~.spec.MethodSpec` in its own module, listed in :mod:`.registry`):
``kaplan_N``, ``kaplan_D``, ``kaplan_C`` (single-variable power laws), ``kaplan_ND`` (Kaplan joint),
``approach1`` (training-curve envelope), ``approach2`` (IsoFLOP minima), ``approach3`` (parametric
E + A/N^alpha + B/D^beta), ``data_constrained`` (Muennighoff et al.'s repeated-data law). With ``methods=None`` every method the data supports is run and the others are listed in
``FitReport.skipped`` with the reason.

When the table holds learning curves, each method sees the points its spec names (``MethodSpec.points``): final
losses (kaplan_N/D/ND, approach2/3: each run's last checkpoint), every checkpoint (kaplan_C: the compute frontier),
or the curves (approach1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ScalePlanError
from . import registry
from .result import FitReport, FitResult

METHODS = registry.names()

__all__ = ["METHODS", "FitReport", "FitResult", "GroupedFitReport", "fit", "fit_groups", "fit_method"]


def _spec(method: str, param: str | None = None):
    """The registry's spec of ``method``; a ScalePlanError naming the methods when there is none (``param``: the
    keyword argument the name came in, for the message)."""
    spec = registry.get(method)
    if spec is None:
        where = f" in {param}" if param else ""
        raise ScalePlanError(f"unknown method {method!r}{where}; methods are {', '.join(registry.names())}",
                             param=param)
    return spec


def fit_method(method: str, table, *, bootstrap: int = 1000, seed: int = 0, offset: bool = False,
               loss: str = "huber", delta: float = 1e-3, asymmetry: float = 10.0, at_flops: float | None = None,
               budget_tol: float = 0.1, vertex: str = "parabola", loss_noise: float | None = None, base_law=None,
               screen: str = "varpro", tie_exponents: bool = False,
               progress: Callable[[str, int, int], None] | None = None) -> FitResult:
    """Fit one method to ``table`` (already restricted to the points the method should see).

    ``vertex`` and ``loss_noise``: how approach2 finds each IsoFLOP minimum (docs/fitting.md §3.3); ``base_law``: the
    E, A, B, alpha, beta that data_constrained keeps fixed (default: fitted to the single-epoch runs; §3.9).
    ``screen`` (``"varpro"`` or ``"grid"``) and ``tie_exponents`` (alpha = beta): approach3's starts and form (§3.1).
    ``progress(method, done, total)`` is called as bootstrap replicates finish (at most ~50 times per method)."""
    spec = _spec(method)
    options = dict(offset=offset, loss=loss, delta=delta, asymmetry=asymmetry, at_flops=at_flops,
                   budget_tol=budget_tol, vertex=vertex, loss_noise=loss_noise, base_law=base_law, screen=screen,
                   tie_exponents=tie_exponents)
    return spec.fit(table, bootstrap=bootstrap, seed=seed, progress=progress,
                    **{k: options[k] for k in spec.options})


def select_points(method: str, table):
    """The rows of ``table`` that ``method`` fits (its spec's ``points``: final losses, every row, or curves)."""
    return _spec(method).select(table)


HOLDOUT_BY = ("compute", "size")
SAME_SIZE_REL = 1e-6  # N values within this relative distance are one model size


def holdout_runs(table, k: int, by: str = "compute") -> np.ndarray:
    """The run ids to hold out: the ``k`` runs with the largest compute (``by="compute"``), or every run of the ``k``
    largest model sizes (``by="size"``; sizes within ``SAME_SIZE_REL`` are one). A run's compute and size are those of
    its last checkpoint (its largest C; its N)."""
    if by not in HOLDOUT_BY:
        raise ScalePlanError(f"holdout_by must be one of {', '.join(HOLDOUT_BY)}, got {by!r}", param="holdout_by")
    runs, inv = np.unique(table.run, return_inverse=True)
    if by == "compute":
        if k >= runs.size - 2:
            raise ScalePlanError(f"holdout {k}: the data has only {runs.size} runs; hold out fewer", param="holdout")
        cmax = np.zeros(runs.size)
        np.maximum.at(cmax, inv, table.C)
        return runs[np.argsort(cmax)[-k:]]
    nmax = np.zeros(runs.size)
    np.maximum.at(nmax, inv, table.N)
    sizes = np.sort(nmax)
    distinct = sizes[np.r_[True, sizes[1:] > sizes[:-1] * (1 + SAME_SIZE_REL)]]
    if k >= distinct.size - 1:
        raise ScalePlanError(f"holdout {k} by size: the data has only {distinct.size} model sizes; hold out fewer "
                             "(at least two sizes must remain to fit)", param="holdout")
    cut = distinct[-k] / (1 + SAME_SIZE_REL)
    held = runs[nmax >= cut]
    if runs.size - held.size < 3:
        raise ScalePlanError(f"holdout {k} by size: the {k} largest sizes hold {held.size} of the {runs.size} runs; "
                             "hold out fewer", param="holdout")
    return held


def holdout_check(method: str, table, k: int, by: str = "compute", **kw) -> dict:
    """Fit without the held-out runs (:func:`holdout_runs`: the k largest-compute runs, or every run of the k largest
    sizes); relative error of the predicted loss on their final points. The prediction is the fitted law's own
    ``loss`` (``FitResult.to_law()``), whatever method fitted it. A method whose law predicts no loss (Approaches 1
    and 2), or whose refit fails, gets a ``note`` instead of errors."""
    held = holdout_runs(table, k, by)
    mask = np.isin(table.run, held)
    train = table.subset(~mask)
    test = table.subset(mask).final()
    base = {"runs": held.tolist(), "by": by, "k": int(k)}
    if _spec(method).law_form == "allocation":
        return {**base, "note": f"{method} predicts no loss; no extrapolation check"}
    try:
        res = fit_method(method, select_points(method, train), **{**kw, "bootstrap": 0})
        law = res.to_law()
    except ScalePlanError as e:
        return {**base, "note": f"refit without the held-out runs failed: {e}"}
    if not law.has_loss:
        return {**base, "note": f"{method} predicts no loss; no extrapolation check"}
    pred = np.asarray(law.loss(test.N, test.D, unique_tokens=test.U, C=test.C), dtype=float)
    rel = (pred - test.loss) / test.loss
    return {**base, "n_points": int(len(test)), "max_train_flops": float(train.C.max()),
            "max_train_N": float(train.N.max()),
            "mean_abs_rel_error": float(np.mean(np.abs(rel))), "max_abs_rel_error": float(np.max(np.abs(rel))),
            "points": [{"run": str(r), "N": float(n), "D": float(d), "loss": float(l), "predicted": float(pp),
                        "rel_error": float(e)} for r, n, d, l, pp, e in
                       zip(test.run, test.N, test.D, test.loss, pred, rel)],
            "params": res.params}


def report_budget(table, at_flops: float | None) -> tuple[float, str]:
    """(C, why): the one budget (FLOPs) at which every method reports N_opt, D_opt and loss: ``at_flops`` when given,
    else the largest compute in the data. ``why`` is ``FitReport.at_flops_source``."""
    if at_flops is not None:
        return float(at_flops), "--at-flops"
    return float(np.max(table.C)), "largest compute in the data"


def _progress_callback(progress):
    """``progress`` as a (method, done, total) callable. An old-style one-argument callable is called once per method
    with the method name (when its bootstrap starts, or when it starts if there is no bootstrap)."""
    if progress is None:
        return None
    try:
        inspect.signature(progress).bind("m", 0, 0)
        return progress
    except TypeError:
        return lambda m, done, total: progress(m) if done == 0 else None
    except ValueError:  # no signature available (some builtins): assume the new form
        return progress


def _check_int(value, name: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ScalePlanError(f"{name} must be a whole number >= {lo}, got {value!r}", param=name)
    if value < lo:
        raise ScalePlanError(f"{name} must be >= {lo}, got {value}", param=name)
    return int(value)


def _check_options(*, bootstrap, seed, delta, asymmetry, at_flops, holdout, drop_top_loss, budget_tol):
    _check_int(bootstrap, "bootstrap")
    _check_int(seed, "seed")
    _check_int(holdout, "holdout")
    _check_int(drop_top_loss, "drop_top_loss")

    def real(v):
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)

    if not (real(delta) and delta > 0):
        raise ScalePlanError(f"delta must be a positive number (the Huber threshold on log loss), got {delta!r}",
                             param="delta")
    if not (real(asymmetry) and asymmetry > 0):
        raise ScalePlanError(f"asymmetry must be a positive number (the weight of over-predictions), got "
                             f"{asymmetry!r}", param="asymmetry")
    if not (real(budget_tol) and 0 < budget_tol < 1):
        raise ScalePlanError(f"budget_tol must be a fraction between 0 and 1 (e.g. 0.1 for 10%), got {budget_tol!r}",
                             param="budget_tol")
    if at_flops is not None and not (real(at_flops) and at_flops > 0):
        raise ScalePlanError(f"at_flops must be a positive number of FLOPs, got {at_flops!r}", param="at_flops")


def fit(table, methods: Sequence[str] | None = None, *, bootstrap: int = 1000, seed: int = 0, offset: bool = False,
        loss: str = "huber", delta: float = 1e-3, asymmetry: float = 10.0, at_flops: float | None = None,
        holdout: int = 0, drop_top_loss: int = 0, budget_tol: float = 0.1, holdout_by: str = "compute",
        vertex: str = "parabola", loss_noise: float | None = None, base_law=None, screen: str = "varpro",
        tie_exponents: bool = False,
        progress: Callable[[str, int, int], None] | Callable[[str], None] | None = None) -> FitReport:
    """Fit the requested methods (default: every method the data supports). Returns a :class:`FitReport`.

    Every method reports N_opt, D_opt and loss at one budget, ``at_flops`` (default: the largest compute in the data;
    ``FitReport.at_flops``). ``drop_top_loss`` removes the K highest-loss points first (Besiroglu et al. dropped 5 of
    Chinchilla's 245). ``holdout`` refits each method without the K largest-compute runs (``holdout_by="size"``:
    every run of the K largest model sizes) and reports the extrapolation error (side by side:
    ``FitReport.holdout_table()``). ``progress(method, done, total)`` is called as bootstrap replicates finish (at
    most ~50 times per method; a one-argument callable gets the method name as each method starts).
    ``vertex`` ("parabola" or "interpolated") and ``loss_noise`` choose approach2's IsoFLOP minima (docs/fitting.md
    §3.3); ``base_law`` fixes data_constrained's E, A, B, alpha, beta (§3.9).
    """
    from .objective import LOSSES

    if loss not in LOSSES:
        raise ScalePlanError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}", param="loss")
    _check_options(bootstrap=bootstrap, seed=seed, delta=delta, asymmetry=asymmetry, at_flops=at_flops,
                   holdout=holdout, drop_top_loss=drop_top_loss, budget_tol=budget_tol)
    from .approach2 import check_vertex_options

    check_vertex_options(vertex, loss_noise)
    from .approach3 import SCREENS

    if screen not in SCREENS:
        raise ScalePlanError(f"screen must be one of {', '.join(SCREENS)}, got {screen!r}", param="screen")
    if holdout_by not in HOLDOUT_BY:
        raise ScalePlanError(f"holdout_by must be one of {', '.join(HOLDOUT_BY)}, got {holdout_by!r}",
                             param="holdout_by")
    progress = _progress_callback(progress)
    input_info = table.describe()
    if drop_top_loss:
        if drop_top_loss >= len(table) - 5:
            raise ScalePlanError(f"drop_top_loss {drop_top_loss} would leave fewer than 6 points",
                                 param="drop_top_loss")
        keep = np.sort(np.argsort(table.loss, kind="stable")[: len(table) - drop_top_loss])
        table = table.subset(keep)
        input_info["dropped_top_loss"] = int(drop_top_loss)
        input_info["rows_used"] = len(table)
        input_info["runs"] = table.n_runs
    from .common import flat_loss_message

    if (flat := flat_loss_message(table.loss)) is not None:
        raise ScalePlanError(flat)
    if holdout:
        holdout_runs(table, holdout, holdout_by)  # too many to hold out: say so before any fit
    explicit = methods is not None
    todo = list(registry.names()) if methods is None else list(methods)
    specs = {m: _spec(m, "methods") for m in todo}
    # one budget for every method, so that their N_opt / D_opt / loss are comparable
    af, af_source = report_budget(table, at_flops)
    kw = dict(seed=seed, offset=offset, loss=loss, delta=delta, asymmetry=asymmetry, at_flops=af,
              budget_tol=budget_tol, vertex=vertex, loss_noise=loss_noise, base_law=base_law, screen=screen,
              tie_exponents=tie_exponents)
    fits, skipped = [], {}
    for m in todo:
        if not explicit and specs[m].needs_curves and not table.has_curves:
            skipped[m] = "needs per-step learning curves (several checkpoints per run)"
            continue
        if progress:
            progress(m, 0, bootstrap)
        pts = specs[m].select(table)
        try:
            res = fit_method(m, pts, bootstrap=bootstrap, progress=progress, **kw)
        except ScalePlanError as e:
            if explicit:
                raise
            skipped[m] = str(e).split(": ", 1)[-1]
            continue
        if holdout:
            from dataclasses import replace

            res = replace(res, holdout=holdout_check(m, table, holdout, by=holdout_by, **kw))
        fits.append(res)
    if not fits:
        raise ScalePlanError("no method could be fitted: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    options = {"methods": todo, "bootstrap": bootstrap, "seed": seed, "offset": offset, "loss": loss,
               "huber_delta": delta, "asymmetry": asymmetry if loss == "asymmetric" else None, "at_flops": at_flops,
               "holdout": holdout, "drop_top_loss": drop_top_loss, "budget_tol": budget_tol, "vertex": vertex,
               "loss_noise": loss_noise,
               "base_law": None if base_law is None else getattr(base_law, "name", "given"),
               "holdout_by": holdout_by, "screen": screen, "tie_exponents": bool(tie_exponents)}
    return FitReport(input=input_info, fits=tuple(fits), skipped=skipped, options=options, table=table,
                     at_flops=af, at_flops_source=af_source)


def __getattr__(name: str):
    """``fit_groups`` and ``GroupedFitReport`` (one fit per condition) live in :mod:`.groups`."""
    if name in ("fit_groups", "GroupedFitReport"):
        from . import groups

        return getattr(groups, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
