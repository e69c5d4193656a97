"""Kaplan et al. 2020 power laws.

* ``kaplan_N``: L(N) = (N_c/N)^alpha_N on the best (lowest) final loss per model size (Eq. 1.1).
* ``kaplan_D``: L(D) = (D_c/D)^alpha_D on the best loss per data size (Eq. 1.2).
* ``kaplan_C``: L(C) = (C_c/C)^alpha_C on the compute frontier: the lower envelope of loss over all runs and
  checkpoints (a point is on it when no point with less or equal compute has a lower loss) (Eq. 1.3).
  C_c is in FLOPs (divide by 8.64e19 for Kaplan's PF-days).
* ``offset=True``: the saturating form E + (X_c/X)^alpha (Porian et al. 2024's L*(C); Pearce & Song recommend it).
* ``kaplan_ND``: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Eq. 1.5), Huber on log loss, multi-start.

Pure power laws are fitted by least squares in log-log space (what Kaplan did); R² and RMSE are in log space.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from .. import laws
from . import common
from .common import (
    ReplicateProgress,
    loglog_fit,
    loglog_fit_batch,
    need,
    nonfinite_problems,
    require_loss_varies,
    run_bootstrap_weights,
)
from .objective import kaplan_joint_fg, make_fg, offset_power_model
from .optim import batched_lbfgs
from .result import FitResult
from .spec import FigureSpec, MethodSpec


def best_per_value(x: np.ndarray, loss: np.ndarray, run: np.ndarray, rel: float = 1e-6):
    """Indices of the lowest-loss point for each distinct x (values within ``rel`` are one group)."""
    order = np.argsort(x)
    lx = np.log(x[order])
    group = np.r_[0, np.cumsum(np.diff(lx) > rel)]
    idx = []
    for gid in np.unique(group):
        members = order[group == gid]
        idx.append(members[np.argmin(loss[members])])
    return np.array(sorted(idx))


def compute_frontier(C: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the lower envelope of loss vs compute (running minimum in increasing C)."""
    order = np.lexsort((loss, C))
    best = np.inf
    keep = []
    for i in order:
        if loss[i] < best:
            keep.append(i)
            best = loss[i]
    return np.array(keep)


def _select(table, var: str):
    """Indices of the points the single-variable law is fitted to (the mechanism of each kaplan_X method)."""
    if var == "N":
        return best_per_value(table.N, table.loss, table.run)
    if var == "D":
        return best_per_value(table.D, table.loss, table.run)
    return compute_frontier(table.C, table.loss)


def _slope_t(x: np.ndarray, y: np.ndarray, k: float, c: float) -> tuple[float, int]:
    """(|slope| / its least-squares standard error, residual degrees of freedom) of ln y = c + k ln x."""
    lx, ly = np.log(x), np.log(y)
    df = lx.size - 2
    res = ly - (c + k * lx)
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    if df <= 0 or sxx <= 0:
        return float("nan"), df
    se = float(np.sqrt(np.sum(res**2) / df / sxx))
    return (abs(k) / se if se > 0 else float("inf")), df


def fit_single(table, var: str, *, offset=False, bootstrap=1000, seed=0, loss="huber", delta=1e-3,
               progress=None) -> FitResult:
    """Kaplan single-variable law on the selected points (see module docstring)."""
    method = f"kaplan_{var}"
    x_all = {"N": table.N, "D": table.D, "C": table.C}[var]
    need(len(np.unique(x_all)) >= 3, f"{method}: needs at least 3 distinct values of {var}; "
         f"the data has {len(np.unique(x_all))}")
    require_loss_varies(table.loss, method)
    idx = _select(table, var)
    x, y = x_all[idx], table.loss[idx]
    need(len(idx) >= 3, f"{method}: only {len(idx)} points on the {'frontier' if var == 'C' else 'best-loss set'}; "
         "need at least 3")
    warnings = []
    P: dict[str, float] = {}
    ci: dict[str, list[float]] = {}
    samples = None
    info = {"selection": {"N": "best loss per model size", "D": "best loss per token count",
                          "C": "compute frontier (lower envelope)"}[var], "form": "E + (X_c/X)^alpha" if offset
            else "(X_c/X)^alpha", "x_units": {"N": table.param_count + " params", "D": "tokens", "C": "FLOPs"}[var]}
    rng = np.random.default_rng(seed)
    problems: list[str] = []
    tick = ReplicateProgress(progress, method, bootstrap)
    if not offset:
        from scipy.stats import t as student_t

        k, c, r2, rmse = loglog_fit(x, y)
        alpha = -k
        need(alpha > 0, f"{method}: loss does not fall with {var} on the selected points (slope {k:+.3g})")
        with np.errstate(all="ignore"):
            Xc = float(np.exp(c / alpha))
        P = {f"{var}_c": Xc, f"alpha_{var}": alpha}
        objective = rmse
        tval, df = _slope_t(x, y, k, c)
        info["alpha_t"] = tval
        if df > 0 and np.isfinite(tval) and tval <= (tcrit := float(student_t.ppf(0.95, df))):
            problems.append(f"loss does not measurably fall with {var}: the fitted exponent alpha_{var} = "
                            f"{alpha:.3g} is {tval:.2f} standard errors above zero, within the noise (needs more "
                            f"than {tcrit:.2f})")
        if bootstrap:
            W = run_bootstrap_weights(table.run[idx], bootstrap, rng)
            kb, cb = loglog_fit_batch(x, y, W)
            ab = -kb
            with np.errstate(all="ignore"):
                Xb = np.exp(cb / ab)
            samples = {f"{var}_c": Xb, f"alpha_{var}": ab}
            ci = {key: common.percentile_ci(v) for key, v in samples.items()}
            tick(bootstrap)
        converged = True
    else:
        lnX, lnL = np.log(x), np.log(y)
        # start grid as Porian et al. for L*(C): alpha in {0.05..0.5}, E in (0, min loss)
        e0 = np.log(np.linspace(0.1, 0.95, 6) * y.min())
        k0 = np.arange(0.0, 30.0, 5.0)
        a0 = np.array([0.05, 0.1, 0.2, 0.3, 0.5])
        starts = np.array(list(itertools.product(e0, k0, a0)))
        fg = make_fg(offset_power_model, (lnX,), lnL, loss=loss, delta=delta)
        res = batched_lbfgs(fg, starts)
        b = int(np.argmin(res.f))
        e, kk, alpha = res.x[b]
        need(alpha > 0, f"{method}: loss does not fall with {var}: the fitted exponent alpha_{var} is {alpha:.3g} "
             "(the data do not follow E + (X_c/X)^alpha)")
        with np.errstate(all="ignore"):
            P = {"E": float(np.exp(e)), f"{var}_c": float(np.exp(kk / alpha)), f"alpha_{var}": float(alpha)}
        objective = float(res.f[b])
        converged = bool(res.converged[b])
        if not converged:
            problems.append(f"the optimiser stopped without converging ({res.status[b]}, max |gradient| "
                            f"{res.grad_norm[b]:.2g})")
        pred = offset_power_model(res.x[b:b + 1], (lnX,))[0][0]
        rmse = float(np.sqrt(np.mean((pred - lnL) ** 2)))
        r2 = float(1 - np.sum((pred - lnL) ** 2) / np.sum((lnL - lnL.mean()) ** 2))
        # the power-law term must change the loss across the data by more than the noise, else alpha is arbitrary
        with np.errstate(all="ignore"):
            term = np.exp(kk - alpha * lnX)
        change = float(np.ptp(term)) if np.all(np.isfinite(term)) else float("inf")
        noise = float(np.median(np.abs(np.exp(pred) - y)))
        if change <= max(3.0 * noise, 1e-9 * float(y.mean())):
            problems.append(f"loss does not measurably fall with {var}: the fitted (X_c/X)^alpha term changes the "
                            f"loss by only {change:.2g} across the data (typical residual {noise:.2g}), so "
                            f"alpha_{var} = {alpha:.3g} is not determined by the data")
        if P["E"] < 1e-6 * y.min():
            warnings.append(f"E = {P['E']:.3g}: the offset ran to its bound (0); the pure power law (no --offset) "
                            "describes these data as well")
        info["loss"] = loss
        if bootstrap:
            W = run_bootstrap_weights(table.run[idx], bootstrap, rng)
            fgb = make_fg(offset_power_model, (lnX,), lnL, loss=loss, delta=delta, weights=W)
            rb = batched_lbfgs(fgb, np.repeat(res.x[b][None], bootstrap, axis=0), progress=tick)
            ok = rb.converged
            with np.errstate(all="ignore"):
                samples = {"E": np.exp(rb.x[ok, 0]), f"{var}_c": np.exp(rb.x[ok, 1] / rb.x[ok, 2]),
                           f"alpha_{var}": rb.x[ok, 2]}
            ci = {key: common.percentile_ci(v) for key, v in samples.items()}
            lo, hi = ci["E"]
            if hi / max(lo, 1e-12) > 1.3:
                warnings.append(f"E is poorly identified: its interval spans {lo:.3g}–{hi:.3g}")
    if var == "N" and table.param_count == "total" and x.min() < 1e8:
        warnings.append("N counts total parameters and the smallest model is < 1e8: embeddings distort the "
                        "exponent at small scale (Pearce & Song 2024); compare with --param-count non-embedding")
    derived = {"r2_log": r2, "rmse_log": rmse}
    problems += nonfinite_problems(P, "the fitted parameter", {f"{var}_c": f"the loss barely changes with {var} in "
                                                              f"the data (alpha_{var} = {P[f'alpha_{var}']:.3g})"})
    if bootstrap:
        info["bootstrap"] = {"replicates": int(bootstrap), "resampled": "runs", "seed": seed}
    return FitResult(method=method, params=P, n_points=len(idx), objective=objective,
                     converged=converged and not problems, ci95=ci, derived=derived,
                     warnings=tuple(problems + warnings), info=info, samples=samples,
                     plot_data={"x": x, "loss": y, "var": var, "x_all": x_all, "loss_all": table.loss})


def fit_joint(table, *, bootstrap=1000, seed=0, loss="huber", delta=1e-3, progress=None) -> FitResult:
    """Kaplan joint L(N, D) (Eq. 1.5) by Huber on log loss with a multi-start grid."""
    need(len(table) >= 5, f"kaplan_ND: needs at least 5 points (4 parameters), got {len(table)}")
    need(len(np.unique(table.N)) >= 2, "kaplan_ND: all runs have the same size N; need several model sizes")
    require_loss_varies(table.loss, "kaplan_ND")
    lnN, lnD, lnL = np.log(table.N), np.log(table.D), np.log(table.loss)
    u0 = np.log([1e12, 1e13, 1e14, 1e15])
    v0 = np.log([1e11, 1e12, 1e13, 1e14])
    a0 = np.array([0.05, 0.1, 0.2, 0.35])
    starts = np.array(list(itertools.product(u0, v0, a0, a0)))
    fg = kaplan_joint_fg(lnN, lnD, lnL, loss=loss, delta=delta)
    res = batched_lbfgs(fg, starts)
    b = int(np.argmin(res.f))
    u, v, aN, aD = res.x[b]
    with np.errstate(all="ignore"):
        P = {"N_c": float(np.exp(u)), "D_c": float(np.exp(v)), "alpha_N": float(aN), "alpha_D": float(aD)}
    warnings = []
    problems = []
    for name, var in (("alpha_N", "N"), ("alpha_D", "D")):
        if P[name] <= 0:
            problems.append(f"loss does not fall with {var}: the fitted exponent {name} is {P[name]:.3g} (the joint "
                            "Kaplan form does not describe these data)")
    if not problems and all(np.isfinite(v) for v in P.values()):
        # each variable must move the predicted loss across the data by more than the noise
        pred = np.exp(laws.kaplan_joint_log_loss(table.N, table.D, **P))
        noise = float(np.median(np.abs(pred - table.loss)))
        for var, Nx, Dx in (("N", table.N, np.median(table.D)), ("D", np.median(table.N), table.D)):
            change = np.exp(laws.kaplan_joint_log_loss(Nx, Dx, **P))
            change = float(np.ptp(change)) if np.all(np.isfinite(change)) else float("inf")
            if change <= max(3.0 * noise, 1e-9 * float(table.loss.mean())):
                problems.append(f"loss does not measurably fall with {var}: the fitted law changes the loss by only "
                                f"{change:.2g} across the data's {var} range (typical residual {noise:.2g}), so "
                                f"alpha_{var} = {P['alpha_' + var]:.3g} is not determined by the data")
    problems += nonfinite_problems(P, "the fitted parameter", {
        "N_c": f"the loss barely changes with N in the data (alpha_N = {P['alpha_N']:.3g})",
        "D_c": f"the loss barely changes with D in the data (alpha_D = {P['alpha_D']:.3g})"})
    if not res.converged[b]:
        problems.append(f"the optimiser stopped without converging ({res.status[b]}, max |gradient| "
                        f"{res.grad_norm[b]:.2g})")
    ci, samples = {}, None
    info = {"loss": loss, "huber_delta": delta, "n_starts": len(starts),
            "n_starts_at_best": int(np.sum(res.f <= res.f[b] * (1 + 1e-6))), "iterations_best": int(res.nit[b])}
    if bootstrap:
        rng = np.random.default_rng(seed)
        W = run_bootstrap_weights(table.run, bootstrap, rng)
        fgb = kaplan_joint_fg(lnN, lnD, lnL, loss=loss, delta=delta, weights=W)
        rb = batched_lbfgs(fgb, np.repeat(res.x[b][None], bootstrap, axis=0),
                           progress=ReplicateProgress(progress, "kaplan_ND", bootstrap))
        ok = rb.converged
        with np.errstate(all="ignore"):
            samples = {"N_c": np.exp(rb.x[ok, 0]), "D_c": np.exp(rb.x[ok, 1]), "alpha_N": rb.x[ok, 2],
                       "alpha_D": rb.x[ok, 3]}
        ci = {k: common.percentile_ci(s) for k, s in samples.items()}
        info["bootstrap"] = {"replicates": int(bootstrap), "converged": int(ok.sum()), "resampled": "runs",
                             "seed": seed}
    if problems:  # the allocation exponents of an invalid law are meaningless
        derived = {"a": float("nan"), "b": float("nan")}
    else:
        a_opt, b_opt = laws.kaplan_joint_exponents(aN, aD)
        derived = {"a": float(a_opt), "b": float(b_opt)}
    return FitResult(method="kaplan_ND", params=P, n_points=len(table), objective=float(res.f[b]),
                     converged=bool(res.converged[b]) and not problems, ci95=ci, derived=derived,
                     warnings=tuple(problems + warnings),
                     info=info, samples=samples, plot_data={"N": table.N, "D": table.D, "loss": table.loss})


# ---------------------------------------------------------------------------------------------- registry entries
SINGLE_FIGURE = FigureSpec(
    "plot_single", "Kaplan single-variable power laws: selected points (best loss per size / per token count, "
    "compute frontier), all points in grey, the fit with its 95% bootstrap band; shaded: extrapolation.",
    combined=True, title="Kaplan power-law fits", key="kaplan")


def _single(var: str, points: str, rank: int, description: str) -> MethodSpec:
    return MethodSpec(name=f"kaplan_{var}", fit=functools.partial(fit_single, var=var), law_form="power",
                      variable=var, params_map=((f"{var}_c", "X_c"), (f"alpha_{var}", "alpha")), points=points,
                      options=("offset", "loss", "delta"), figure=SINGLE_FIGURE, primary_rank=rank,
                      description=description)


SPEC_N = _single("N", "final", 5, "L(N) power law on the best final loss per model size")
SPEC_D = _single("D", "final", 6, "L(D) power law on the best final loss per token count")
SPEC_C = _single("C", "all", 4, "L(C) power law on the compute frontier of every checkpoint")
SPEC_ND = MethodSpec(name="kaplan_ND", fit=fit_joint, law_form="kaplan_joint", points="final",
                     options=("loss", "delta"), robust_objective=True, primary_rank=3,
                     description="Kaplan joint L(N, D) on final losses")
