"""Chinchilla Approach 3: L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Sec. 3.3 and App. D.2).

Recipe (docs/fitting.md §3.1, as Besiroglu et al. 2024 replicated it): log-sum-exp form in log space, Huber (delta 1e-3)
on log loss SUMMED over points, analytic gradients, L-BFGS with tight tolerances (ftol 1e-15, gtol 1e-12), multi-start
over Hoffmann's grid of 4,500 starts; all starts run at once in a batched L-BFGS. The bootstrap resamples runs and
re-converges every replicate from the point estimate with the same tolerances. Starts are screened at ftol 1e-10 and
those within 3x of the best objective polished at the tight tolerances (the optimum is the same; half the time).
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import laws
from . import common
from .common import (
    ReplicateProgress,
    is_real_finite,
    need,
    nonfinite_problems,
    require_loss_varies,
    run_bootstrap_weights,
)
from .objective import chinchilla_fg
from .optim import batched_lbfgs
from .result import FitResult
from .spec import FigureSpec, MethodSpec

PARAMS = ("E", "A", "B", "alpha", "beta")


def hoffmann_grid() -> np.ndarray:
    """Hoffmann et al. App. D.2 init grid in (a, b, e, alpha, beta): alpha, beta in {0, 0.5, ..., 2},
    e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} -> 6·6·5·5·5 = 4,500 starts."""
    ab = np.arange(0.0, 30.0, 5.0)
    e = np.arange(-1.0, 1.01, 0.5)
    ex = np.arange(0.0, 2.01, 0.5)
    return np.array(list(itertools.product(ab, ab, e, ex, ex)), dtype=float)


def theta_to_params(th: np.ndarray) -> dict[str, np.ndarray]:
    th = np.atleast_2d(th)
    with np.errstate(over="ignore"):
        return {"E": np.exp(th[:, 2]), "A": np.exp(th[:, 0]), "B": np.exp(th[:, 1]), "alpha": th[:, 3], "beta": th[:, 4]}


def derived_quantities(P: dict[str, np.ndarray], at_flops: float | None) -> dict[str, np.ndarray]:
    """a, b, G and (at C = at_flops) N_opt, D_opt, tokens/param and the loss there (Hoffmann Eq. 4), from the law
    formulas in :mod:`scaling_planner.laws`."""
    al, be, A, B, E = P["alpha"], P["beta"], P["A"], P["B"], P["E"]
    with np.errstate(all="ignore"):
        a, b = laws.chinchilla_exponents(al, be)
        out = {"a": a, "b": b, "G": laws.chinchilla_G(A, B, al, be)}
        if at_flops is not None:
            N, D = laws.chinchilla_allocation(at_flops, A, B, al, be)
            out.update(N_opt=N, D_opt=D, tokens_per_param=D / N, loss_opt=laws.chinchilla_loss(N, D, E, A, B, al, be))
    return out


DERIVED_ALLOCATION = ("a", "b", "G", "N_opt", "D_opt", "tokens_per_param", "loss_opt")


def validity_problems(P: dict[str, float], derived: dict, table, lnL_hat: np.ndarray) -> list[str]:
    """Why the fitted law is not a usable answer, in the data's terms (empty when it is): non-positive exponents, a
    term that does not measurably change the loss across the data (its exponent is then not determined by the data),
    non-finite parameters or derived numbers."""
    out = []
    for name, var in (("alpha", "N"), ("beta", "D")):
        v = P[name]
        if is_real_finite(v) and v <= 0:
            out.append(f"loss does not fall with {var}: the fitted exponent {name} is {v:.3g}")
    L_hat = np.exp(lnL_hat)
    noise = float(np.median(np.abs(L_hat - table.loss)))
    for name, coef, var, x in (("alpha", "A", "N", table.N), ("beta", "B", "D", table.D)):
        ex = P[name]
        if not (is_real_finite(ex) and ex > 0 and is_real_finite(P[coef])):
            continue
        with np.errstate(all="ignore"):
            term = P[coef] / x**ex
        change = float(np.ptp(term)) if np.all(np.isfinite(term)) else float("inf")
        if change <= max(3.0 * noise, 1e-9 * float(np.mean(table.loss))):
            out.append(f"loss does not measurably fall with {var}: the fitted {coef}/{var}^{name} term changes the "
                       f"loss by only {change:.2g} across the data (typical residual {noise:.2g}), so {name} = "
                       f"{ex:.3g} is not determined by the data")
    out += nonfinite_problems(P, "the fitted parameter")
    if not out:
        out += nonfinite_problems({k: v for k, v in derived.items() if k in DERIVED_ALLOCATION}, "the derived")
    return out


def fit_approach3(table, *, loss="huber", delta=1e-3, asymmetry=10.0, bootstrap=1000, seed=0, at_flops=None,
                  grid: np.ndarray | None = None, maxiter=200, progress=None) -> FitResult:
    need(len(table) >= 6, f"approach3: needs at least 6 points (5 parameters), got {len(table)}")
    need(len(np.unique(table.N)) >= 2, "approach3: all runs have the same size N; need several model sizes")
    need(len(np.unique(np.round(np.log(table.D), 6))) >= 2, "approach3: all runs have the same token count D")
    require_loss_varies(table.loss, "approach3")
    lnN, lnD, lnL = np.log(table.N), np.log(table.D), np.log(table.loss)
    starts = hoffmann_grid() if grid is None else np.asarray(grid, float)
    fg = chinchilla_fg(lnN, lnD, lnL, loss=loss, delta=delta, asymmetry=asymmetry)
    # Screening pass over every start (ftol 1e-10, gtol 1e-8), then every start within 3x of the best objective is
    # polished to tight tolerances (ftol 1e-15, gtol 1e-12). Same optimum as polishing all 4,500; ~2x faster.
    screen = batched_lbfgs(fg, starts, maxiter=maxiter, ftol=1e-10, gtol=1e-8)
    finite = np.isfinite(screen.f)
    need(finite.any(), "approach3: the objective is not finite at any start; check the data for extreme values")
    sel = np.flatnonzero(finite & (screen.f <= 3.0 * np.nanmin(np.where(finite, screen.f, np.inf))))
    res = batched_lbfgs(fg, screen.x[sel], maxiter=2000)
    best = int(np.argmin(res.f))
    fbest = float(res.f[best])
    tol = 1e-6 * max(abs(fbest), 1e-12)
    at_best = int(np.sum(res.f <= fbest + tol))
    # distinct local optima among converged starts, for the report
    conv = res.converged & np.isfinite(res.f)
    optima = np.unique(np.round(np.r_[res.f[conv], screen.f[finite]], 10))[:5]
    th = res.x[best]
    P = {k: float(v[0]) for k, v in theta_to_params(th).items()}
    warnings = []
    if at_best < 2:
        warnings.append("only one start reached the best objective: the optimum may not be global")
    if P["E"] > table.loss.min():
        warnings.append(f"E = {P['E']:.4g} is above the lowest observed loss {table.loss.min():.4g}")
    elif P["E"] < 1e-6 * table.loss.min():
        warnings.append(f"E = {P['E']:.3g}: the irreducible loss ran to its bound (0); the data show no levelling off "
                        "of the loss, and the law's extrapolation has no floor")
    af = at_flops if at_flops is not None else float(table.C.max())
    derived = {k: float(v[0]) for k, v in derived_quantities({k: np.array([v]) for k, v in P.items()}, af).items()}
    derived["at_flops"] = af
    with np.errstate(all="ignore"):
        lnL_hat = np.log(np.exp(th[2]) + np.exp(th[0] - th[3] * lnN) + np.exp(th[1] - th[4] * lnD))
    r = lnL_hat - lnL
    problems = validity_problems(P, derived, table, lnL_hat)
    if problems:  # allocation numbers from an invalid law are meaningless: report them as not available
        derived.update({k: float("nan") for k in DERIVED_ALLOCATION})
    info = {"loss": loss, "huber_delta": delta if loss != "mse" else None, "reduction": "sum",
            "n_starts": int(len(starts)), "n_starts_at_best": at_best,
            "n_starts_converged": int(np.sum(screen.converged)), "n_starts_polished": int(len(sel)),
            "n_starts_hit_maxiter": int(np.sum(screen.status == "maxiter")),
            "iterations_best": int(res.nit[best] + screen.nit[sel[best]]),
            "status_best": str(res.status[best]), "grad_max_best": float(res.grad_norm[best]),
            "local_optima": optima.tolist(),
            "optimizer": "batched L-BFGS over all starts (ftol 1e-10), then every start within 3x of the best "
                         "polished with ftol=1e-15, gtol=1e-12",
            "median_abs_log_residual": float(np.median(np.abs(r))),
            "share_residuals_beyond_delta": float(np.mean(np.abs(r) > delta)) if loss != "mse" else None}
    if loss != "mse" and info["share_residuals_beyond_delta"] > 0.5:
        info["note"] = (f"{info['share_residuals_beyond_delta']:.0%} of |log residuals| exceed delta={delta:g}: "
                        "the Huber fit behaves like a median (L1) regression")
    ci, samples = {}, None
    if bootstrap and bootstrap > 0:
        rng = np.random.default_rng(seed)
        W = run_bootstrap_weights(table.run, bootstrap, rng)
        fgb = chinchilla_fg(lnN, lnD, lnL, loss=loss, delta=delta, asymmetry=asymmetry, weights=W)
        tick = ReplicateProgress(progress, "approach3", bootstrap)
        rb = batched_lbfgs(fgb, np.repeat(th[None, :], bootstrap, axis=0), maxiter=2000, progress=tick)
        Pb = theta_to_params(rb.x)
        ok = rb.converged & np.isfinite(rb.f)
        Db = derived_quantities(Pb, af)
        samples = {k: v[ok] for k, v in Pb.items()}
        for k in PARAMS:
            ci[k] = common.percentile_ci(Pb[k][ok])
        for k, v in Db.items():
            ci[k] = common.percentile_ci(v[ok])
        info["bootstrap"] = {"replicates": int(bootstrap), "converged": int(ok.sum()), "resampled": "runs",
                             "seed": seed, "median_iterations": float(np.median(rb.nit))}
        if ok.sum() < 0.9 * bootstrap:
            warnings.append(f"only {int(ok.sum())} of {bootstrap} bootstrap replicates converged")
        lo, hi = ci["E"]
        if hi / max(lo, 1e-12) > 1.3:
            warnings.append(f"E is poorly identified: its interval spans {lo:.3g}–{hi:.3g}")
    if problems:
        for k in DERIVED_ALLOCATION:
            ci.pop(k, None)
    if not res.converged[best]:
        problems.append(f"the optimiser stopped without converging ({res.status[best]}, max |gradient| "
                        f"{res.grad_norm[best]:.2g})")
    return FitResult(method="approach3", params=P, n_points=len(table), objective=fbest,
                     converged=bool(res.converged[best]) and not problems, ci95=ci, derived=derived,
                     warnings=tuple(problems + warnings),
                     info=info, samples=samples,
                     plot_data={"N": table.N, "D": table.D, "C": table.C, "loss": table.loss})


# ---------------------------------------------------------------------------------------------- registry entry
def notes(result: FitResult) -> list[str]:
    """The multi-start diagnostics (how many starts reached the best objective) and the Huber note."""
    info = result.info
    if "n_starts" not in info:
        return []
    out = [f"{info['n_starts_at_best']} of {info['n_starts']} starts reached the best objective; "
           f"{info['n_starts_converged']} converged; best start: {info['iterations_best']} iterations "
           f"({info['status_best']})"]
    return out + ([info["note"]] if info.get("note") else [])


SPEC = MethodSpec(
    name="approach3", fit=fit_approach3, law_form="chinchilla", points="final",
    options=("loss", "delta", "asymmetry", "at_flops"), robust_objective=True, primary_rank=0, frontier=True,
    figure=FigureSpec("plot_parametric", "Approach 3: runs (colour = log10 N), compute-optimal frontier with 95% "
                      "bootstrap band, shaded extrapolation; residuals vs compute."),
    notes=notes, description="Chinchilla parametric E + A/N^alpha + B/D^beta on final losses")
