"""Fitting scaling laws to a RunTable: ``fit(table, methods=...) -> FitReport``.

Methods: ``kaplan_N``, ``kaplan_D``, ``kaplan_C`` (single-variable power laws), ``kaplan_ND`` (Kaplan joint),
``approach1`` (training-curve envelope), ``approach2`` (IsoFLOP parabolas), ``approach3`` (parametric
E + A/N^alpha + B/D^beta). With ``methods=None`` every method the data supports is run and the others are listed in
``FitReport.skipped`` with the reason.

When the table holds learning curves, methods that model final losses (kaplan_N/D/ND, approach2/3) use each run's
last checkpoint; kaplan_C uses every checkpoint (the compute frontier); approach1 uses the curves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ScalePlanError
from .result import FitReport, FitResult

METHODS = ("kaplan_N", "kaplan_D", "kaplan_C", "kaplan_ND", "approach1", "approach2", "approach3")

__all__ = ["METHODS", "FitReport", "FitResult", "fit", "fit_method"]


def fit_method(method: str, table, *, bootstrap: int = 1000, seed: int = 0, offset: bool = False,
               loss: str = "huber", delta: float = 1e-3, asymmetry: float = 10.0, at_flops: float | None = None,
               budget_tol: float = 0.1, progress: Callable[[str, int, int], None] | None = None) -> FitResult:
    """Fit one method to ``table`` (already restricted to the points the method should see).

    ``progress(method, done, total)`` is called as bootstrap replicates finish (at most ~50 times per method)."""
    from . import approach1, approach2, approach3, kaplan

    if method in ("kaplan_N", "kaplan_D", "kaplan_C"):
        return kaplan.fit_single(table, method[-1], offset=offset, bootstrap=bootstrap, seed=seed, loss=loss,
                                 delta=delta, progress=progress)
    if method == "kaplan_ND":
        return kaplan.fit_joint(table, bootstrap=bootstrap, seed=seed, loss=loss, delta=delta, progress=progress)
    if method == "approach1":
        return approach1.fit_approach1(table, bootstrap=bootstrap, seed=seed, at_flops=at_flops, progress=progress)
    if method == "approach2":
        return approach2.fit_approach2(table, bootstrap=bootstrap, seed=seed, budget_tol=budget_tol,
                                       at_flops=at_flops, progress=progress)
    if method == "approach3":
        return approach3.fit_approach3(table, loss=loss, delta=delta, asymmetry=asymmetry, bootstrap=bootstrap,
                                       seed=seed, at_flops=at_flops, progress=progress)
    raise ScalePlanError(f"unknown method {method!r}; methods are {', '.join(METHODS)}")


def _points_for(method: str, table):
    if method in ("approach1", "kaplan_C") or not table.has_curves:
        return table
    return table.final()


def predict_loss(result: FitResult, N, D, C):
    """Loss predicted by a fit at (N, D, C), or None for allocation-only methods."""
    p = result.params
    m = result.method
    if m == "approach3":
        return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    if m == "kaplan_ND":
        r = p["alpha_N"] / p["alpha_D"]
        return ((p["N_c"] / N) ** r + p["D_c"] / D) ** p["alpha_D"]
    if m.startswith("kaplan_"):
        var = m[-1]
        x = {"N": N, "D": D, "C": C}[var]
        return p.get("E", 0.0) + (p[f"{var}_c"] / x) ** p[f"alpha_{var}"]
    return None


def holdout_check(method: str, table, k: int, **kw) -> dict:
    """Fit without the k largest-compute runs; relative error of the predicted loss on their final points."""
    runs, inv = np.unique(table.run, return_inverse=True)
    cmax = np.zeros(runs.size)
    np.maximum.at(cmax, inv, table.C)
    if k >= runs.size - 2:
        raise ScalePlanError(f"--holdout {k}: the data has only {runs.size} runs; hold out fewer")
    held = runs[np.argsort(cmax)[-k:]]
    mask = np.isin(table.run, held)
    train = table.subset(~mask)
    test = table.subset(mask).final()
    res = fit_method(method, _points_for(method, train), **{**kw, "bootstrap": 0})
    pred = predict_loss(res, test.N, test.D, test.C)
    if pred is None:
        return {"runs": held.tolist(), "note": f"{method} predicts no loss; no extrapolation check"}
    rel = (pred - test.loss) / test.loss
    return {"runs": held.tolist(), "n_points": int(len(test)), "max_train_flops": float(train.C.max()),
            "mean_abs_rel_error": float(np.mean(np.abs(rel))), "max_abs_rel_error": float(np.max(np.abs(rel))),
            "points": [{"run": str(r), "N": float(n), "D": float(d), "loss": float(l), "predicted": float(pp),
                        "rel_error": float(e)} for r, n, d, l, pp, e in
                       zip(test.run, test.N, test.D, test.loss, pred, rel)],
            "params": res.params}


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


def _check_int(value, flag: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ScalePlanError(f"{flag} must be a whole number >= {lo}, got {value!r}")
    if value < lo:
        raise ScalePlanError(f"{flag} must be >= {lo}, got {value}")
    return int(value)


def _check_options(*, bootstrap, seed, delta, asymmetry, at_flops, holdout, drop_top_loss, budget_tol):
    _check_int(bootstrap, "--bootstrap")
    _check_int(seed, "--seed")
    _check_int(holdout, "--holdout")
    _check_int(drop_top_loss, "--drop-top-loss")

    def real(v):
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)

    if not (real(delta) and delta > 0):
        raise ScalePlanError(f"--huber-delta must be a positive number, got {delta!r}")
    if not (real(asymmetry) and asymmetry > 0):
        raise ScalePlanError(f"--asymmetry must be a positive number (the weight of over-predictions), got "
                             f"{asymmetry!r}")
    if not (real(budget_tol) and 0 < budget_tol < 1):
        raise ScalePlanError(f"--budget-tol must be a fraction between 0 and 1 (e.g. 0.1 for 10%), got {budget_tol!r}")
    if at_flops is not None and not (real(at_flops) and at_flops > 0):
        raise ScalePlanError(f"--at-flops must be a positive number of FLOPs, got {at_flops!r}")


def fit(table, methods: Sequence[str] | None = None, *, bootstrap: int = 1000, seed: int = 0, offset: bool = False,
        loss: str = "huber", delta: float = 1e-3, asymmetry: float = 10.0, at_flops: float | None = None,
        holdout: int = 0, drop_top_loss: int = 0, budget_tol: float = 0.1,
        progress: Callable[[str, int, int], None] | Callable[[str], None] | None = None) -> FitReport:
    """Fit the requested methods (default: every method the data supports). Returns a :class:`FitReport`.

    Every method reports N_opt, D_opt and loss at one budget, ``at_flops`` (default: the largest compute in the data;
    ``FitReport.at_flops``). ``drop_top_loss`` removes the K highest-loss points first (Besiroglu et al. dropped 5 of
    Chinchilla's 245). ``holdout`` refits each method without the K largest-compute runs and reports the
    extrapolation error. ``progress(method, done, total)`` is called as bootstrap replicates finish (at most ~50
    times per method; a one-argument callable gets the method name as each method starts).
    """
    from .objective import LOSSES

    if loss not in LOSSES:
        raise ScalePlanError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    _check_options(bootstrap=bootstrap, seed=seed, delta=delta, asymmetry=asymmetry, at_flops=at_flops,
                   holdout=holdout, drop_top_loss=drop_top_loss, budget_tol=budget_tol)
    progress = _progress_callback(progress)
    input_info = table.describe()
    if drop_top_loss:
        if drop_top_loss >= len(table) - 5:
            raise ScalePlanError(f"--drop-top-loss {drop_top_loss} would leave fewer than 6 points")
        keep = np.sort(np.argsort(table.loss, kind="stable")[: len(table) - drop_top_loss])
        table = table.subset(keep)
        input_info["dropped_top_loss"] = int(drop_top_loss)
        input_info["rows_used"] = len(table)
        input_info["runs"] = table.n_runs
    from .common import flat_loss_message

    if (flat := flat_loss_message(table.loss)) is not None:
        raise ScalePlanError(flat)
    explicit = methods is not None
    todo = list(METHODS) if methods is None else list(methods)
    for m in todo:
        if m not in METHODS:
            raise ScalePlanError(f"unknown method {m!r}; methods are {', '.join(METHODS)}")
    # one budget for every method, so that their N_opt / D_opt / loss are comparable
    af = float(at_flops) if at_flops is not None else float(np.max(table.C))
    af_source = "--at-flops" if at_flops is not None else "largest compute in the data"
    kw = dict(seed=seed, offset=offset, loss=loss, delta=delta, asymmetry=asymmetry, at_flops=af,
              budget_tol=budget_tol)
    fits, skipped = [], {}
    for m in todo:
        if not explicit and m == "approach1" and not table.has_curves:
            skipped[m] = "needs per-step learning curves (several checkpoints per run)"
            continue
        if progress:
            progress(m, 0, bootstrap)
        pts = _points_for(m, table)
        try:
            res = fit_method(m, pts, bootstrap=bootstrap, progress=progress, **kw)
        except ScalePlanError as e:
            if explicit:
                raise
            skipped[m] = str(e).split(": ", 1)[-1]
            continue
        if holdout:
            from dataclasses import replace

            res = replace(res, holdout=holdout_check(m, table, holdout, **kw))
        fits.append(res)
    if not fits:
        raise ScalePlanError("no method could be fitted: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    options = {"methods": todo, "bootstrap": bootstrap, "seed": seed, "offset": offset, "loss": loss,
               "huber_delta": delta, "asymmetry": asymmetry if loss == "asymmetric" else None, "at_flops": at_flops,
               "holdout": holdout, "drop_top_loss": drop_top_loss, "budget_tol": budget_tol}
    return FitReport(input=input_info, fits=tuple(fits), skipped=skipped, options=options, table=table,
                     at_flops=af, at_flops_source=af_source)
