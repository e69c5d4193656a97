"""Chinchilla Approach 3: L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Sec. 3.3 and App. D.2).

Recipe (docs/fitting.md §3.1, as Besiroglu et al. 2024 replicated it): log-sum-exp form in log space, Huber (delta 1e-3)
on log loss SUMMED over points, analytic gradients, L-BFGS with tight tolerances (ftol 1e-15, gtol 1e-12) from many
starts, all run at once in a batched L-BFGS. The bootstrap resamples runs and re-converges every replicate from the
point estimate with the same tolerances.

Starts (``screen``): ``"varpro"`` (default) screens a grid of exponents by variable projection — for fixed alpha,
beta the law is linear in E, A, B, which nonnegative least squares gives at once — and polishes the best few; it
reaches the optimum of the 4,500-start grid in a fraction of the time (docs/fitting.md §3.1, step 3). ``"grid"`` runs
Hoffmann's 4,500 starts (screened at ftol 1e-10; those within 3x of the best objective polished at the tight
tolerances). ``tie_exponents``: one exponent for N and D, alpha = beta (Gadre et al. 2024), four parameters.
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
    run_bootstrap_counts,
)
from .objective import chinchilla_fg
from .optim import batched_lbfgs
from .result import FitResult
from .spec import FigureSpec, MethodSpec

PARAMS = ("E", "A", "B", "alpha", "beta")
SCREENS = ("varpro", "grid")
# Variable-projection screen (scaleplan; docs/fitting.md §3.1 step 3): alpha and beta each on 40 log-spaced values
# from 0.02 to 2 (Hoffmann's grid spans 0-2; steps of 12.5%), every pair (1,600; 40 when tied); the POLISH_BEST pairs
# with the lowest objective and the POLISH_MINIMA lowest local minima of the grid are polished.
VARPRO_EXPONENTS = np.geomspace(0.02, 2.0, 40)
POLISH_BEST = 4
POLISH_MINIMA = 8
NNLS_SUBSETS = ((0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))  # the columns (E, A, B) each subset keeps


def hoffmann_grid() -> np.ndarray:
    """Hoffmann et al. App. D.2 init grid in (a, b, e, alpha, beta): alpha, beta in {0, 0.5, ..., 2},
    e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} -> 6·6·5·5·5 = 4,500 starts."""
    ab = np.arange(0.0, 30.0, 5.0)
    e = np.arange(-1.0, 1.01, 0.5)
    ex = np.arange(0.0, 2.01, 0.5)
    return np.array(list(itertools.product(ab, ab, e, ex, ex)), dtype=float)


def hoffmann_grid_tied() -> np.ndarray:
    """Hoffmann's grid with one exponent (a, b, e, alpha): 6·6·5·5 = 900 starts."""
    return np.unique(hoffmann_grid()[:, :4], axis=0)


def full_theta(th: np.ndarray) -> np.ndarray:
    """(k, 5) parameter rows (a, b, e, alpha, beta) from rows with tied exponents (a, b, e, alpha): beta = alpha."""
    th = np.atleast_2d(np.asarray(th, dtype=float))
    return th if th.shape[1] == 5 else np.c_[th, th[:, 3]]


def varpro_starts(lnN, lnD, lnL, exponents=VARPRO_EXPONENTS, *, tied: bool = False) -> tuple[np.ndarray, tuple]:
    """Variable projection over a grid of exponents: for each (alpha, beta) pair (alpha = beta when ``tied``) the law
    L = E + A·N^-alpha + B·D^-beta is linear in (E, A, B); the nonnegative least squares of the relative residuals
    (L_hat - L)/L (the log residuals to first order) gives them. Returns the (pairs, 5) parameter rows
    (a, b, e, alpha, beta) and the grid's shape (for its local minima).

    Exact NNLS for three columns, vectorised over the pairs: the least squares on every nonempty subset of the
    columns, the lowest residual among the nonnegative ones (the columns are scaled to unit norm first)."""
    lnN, lnD, lnL = (np.asarray(v, dtype=float) for v in (lnN, lnD, lnL))
    ex = np.asarray(exponents, dtype=float)
    n = lnL.size
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        z = np.exp(-lnL)  # the E column of the relative residual, 1/L
        X = np.exp(-np.outer(ex, lnN) - lnL)  # N^-alpha / L, one row per exponent
        Y = np.exp(-np.outer(ex, lnD) - lnL)
        nz, nx, ny = np.sqrt(z @ z), np.sqrt(np.einsum("ij,ij->i", X, X)), np.sqrt(np.einsum("ij,ij->i", Y, Y))
        z1, X1, Y1 = z / nz, X / nx[:, None], Y / ny[:, None]
        if tied:
            i = j = np.arange(ex.size)
            gxy = np.einsum("ij,ij->i", X1, Y1)
            shape = (ex.size,)
        else:
            i, j = (v.ravel() for v in np.meshgrid(np.arange(ex.size), np.arange(ex.size), indexing="ij"))
            gxy = (X1 @ Y1.T).ravel()
            shape = (ex.size, ex.size)
        gzx, gzy = (X1 @ z1)[i], (Y1 @ z1)[j]
        h = np.stack([np.full(i.size, z1.sum()), X1.sum(axis=1)[i], Y1.sum(axis=1)[j]], axis=1)
        G = np.empty((i.size, 3, 3))
        G[:, 0, 0] = G[:, 1, 1] = G[:, 2, 2] = 1.0
        G[:, 0, 1] = G[:, 1, 0] = gzx
        G[:, 0, 2] = G[:, 2, 0] = gzy
        G[:, 1, 2] = G[:, 2, 1] = gxy
        best_rss = np.full(i.size, np.inf)
        coef = np.zeros((i.size, 3))
        for cols in NNLS_SUBSETS:
            c = _solve_small(G[:, cols][:, :, cols], h[:, cols])
            rss = n - np.einsum("ij,ij->i", c, h[:, cols])
            ok = np.all(c >= 0, axis=1) & np.isfinite(rss) & (rss < best_rss)
            best_rss[ok] = rss[ok]
            coef[ok] = 0.0
            coef[np.ix_(ok, cols)] = c[ok]
        E, A, B = coef[:, 0] / nz, coef[:, 1] / nx[i], coef[:, 2] / ny[j]
        al, be = ex[i], ex[j]
        # a term the projection drops (coefficient 0) starts at a millionth of the smallest loss
        floor = np.log(1e-6) + lnL.min()
        e = np.where(E > 0, np.log(E), floor)
        a = np.where(A > 0, np.log(A), floor + al * lnN.min())
        b = np.where(B > 0, np.log(B), floor + be * lnD.min())
    return np.stack([a, b, e, al, be], axis=1), shape


def _solve_small(G: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Solve the (m, k, k) symmetric systems G c = h for k <= 3 by cofactors; a (near-)singular system gives NaN."""
    k = G.shape[1]
    if k == 1:
        return h / G[:, 0, :]
    if k == 2:
        det = G[:, 0, 0] * G[:, 1, 1] - G[:, 0, 1] ** 2
        c = np.stack([G[:, 1, 1] * h[:, 0] - G[:, 0, 1] * h[:, 1], G[:, 0, 0] * h[:, 1] - G[:, 0, 1] * h[:, 0]], 1)
    else:
        c0, c1, c2 = (np.cross(G[:, (r + 1) % 3], G[:, (r + 2) % 3]) for r in range(3))
        det = np.einsum("ij,ij->i", G[:, 0], c0)
        c = np.stack([np.einsum("ij,ij->i", h, c0), np.einsum("ij,ij->i", h, c1), np.einsum("ij,ij->i", h, c2)], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((det > 1e-12)[:, None], c / det[:, None], np.nan)


def _grid_minima(f: np.ndarray, shape: tuple) -> np.ndarray:
    """Flat indices of the local minima of ``f`` on the grid (no lower neighbour, diagonals included)."""
    F = np.where(np.isfinite(f), f, np.inf).reshape(shape)
    pad = np.pad(F, 1, constant_values=np.inf)
    is_min = np.isfinite(F)
    for off in itertools.product((-1, 0, 1), repeat=F.ndim):
        if any(off):
            sl = tuple(slice(1 + o, 1 + o + m) for o, m in zip(off, F.shape))
            is_min &= F <= pad[sl]
    return np.flatnonzero(is_min.ravel())


def polish_candidates(f: np.ndarray, shape: tuple, best: int = POLISH_BEST, minima: int = POLISH_MINIMA):
    """Indices of the screened grid points to polish: the ``best`` lowest objectives and the ``minima`` lowest local
    minima (several starts in the best basin, so that "starts at the best objective" still means something)."""
    order = np.argsort(np.where(np.isfinite(f), f, np.inf), kind="stable")
    mins = _grid_minima(f, shape)
    mins = mins[np.argsort(f[mins], kind="stable")][:minima]
    picked = list(dict.fromkeys([*order[:best].tolist(), *mins.tolist()]))
    return np.array([i for i in picked if np.isfinite(f[i])], dtype=int)


def theta_to_params(th: np.ndarray) -> dict[str, np.ndarray]:
    th = full_theta(th)
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
                  grid: np.ndarray | None = None, maxiter=200, progress=None, screen: str = "varpro",
                  tie_exponents: bool = False) -> FitResult:
    """Fit L = E + A/N^alpha + B/D^beta (docs/fitting.md §3.1). ``screen``: how the starts are found, ``"varpro"``
    (variable projection over an exponent grid, then the best few polished) or ``"grid"`` (Hoffmann's 4,500 starts, or
    ``grid``'s rows); both reach the same optimum on Epoch's points. ``tie_exponents``: alpha = beta (Gadre et al.
    2024; four parameters, so five points suffice)."""
    tied = bool(tie_exponents)
    if screen not in SCREENS:
        from ..errors import ScalePlanError

        raise ScalePlanError(f"screen must be one of {', '.join(SCREENS)}, got {screen!r}", param="screen")
    n_par = 4 if tied else 5
    what = "4 parameters with tied exponents" if tied else "5 parameters"
    need(len(table) >= n_par + 1, f"approach3: needs at least {n_par + 1} points ({what}), got {len(table)}")
    need(len(np.unique(table.N)) >= 2, "approach3: all runs have the same size N; need several model sizes")
    need(len(np.unique(np.round(np.log(table.D), 6))) >= 2, "approach3: all runs have the same token count D")
    require_loss_varies(table.loss, "approach3")
    lnN, lnD, lnL = np.log(table.N), np.log(table.D), np.log(table.loss)
    fg = chinchilla_fg(lnN, lnD, lnL, loss=loss, delta=delta, asymmetry=asymmetry, tied=tied)
    if grid is not None or screen == "grid":
        starts = (hoffmann_grid_tied() if tied else hoffmann_grid()) if grid is None else np.asarray(grid, float)
        need(starts.ndim == 2 and starts.shape[1] == n_par, f"approach3: grid rows need {n_par} values ({what})")
        screen = "grid"
        # Screening pass over every start (ftol 1e-10, gtol 1e-8), then every start within 3x of the best objective
        # is polished to tight tolerances (ftol 1e-15, gtol 1e-12). Same optimum as polishing all 4,500; ~2x faster.
        scr = batched_lbfgs(fg, starts, maxiter=maxiter, ftol=1e-10, gtol=1e-8)
        screened_f, screened_x, screened_conv = scr.f, scr.x, scr.converged
        screen_nit, hit_maxiter = scr.nit, int(np.sum(scr.status == "maxiter"))
        finite = np.isfinite(scr.f)
        need(finite.any(), "approach3: the objective is not finite at any start; check the data for extreme values")
        sel = np.flatnonzero(finite & (scr.f <= 3.0 * np.nanmin(np.where(finite, scr.f, np.inf))))
        optimizer = ("batched L-BFGS over all starts (ftol 1e-10), then every start within 3x of the best polished "
                     "with ftol=1e-15, gtol=1e-12")
    else:
        cand, shape = varpro_starts(lnN, lnD, lnL, tied=tied)
        screened_x = cand[:, :4] if tied else cand
        screened_f = chinchilla_fg(lnN, lnD, lnL, loss=loss, delta=delta, asymmetry=asymmetry, tied=tied,
                                   gradient=False)(screened_x, None)[0]
        finite = np.isfinite(screened_f)
        need(finite.any(), "approach3: the objective is not finite at any start; check the data for extreme values")
        sel = polish_candidates(screened_f, shape)
        screened_conv, screen_nit, hit_maxiter = None, np.zeros(len(screened_f), dtype=int), 0
        starts = screened_x
        optimizer = (f"variable projection over {len(starts)} exponent {'values' if tied else 'pairs'} (E, A, B by "
                     f"nonnegative least squares), then the best {len(sel)} polished by batched L-BFGS with "
                     "ftol=1e-15, gtol=1e-12")
    res = batched_lbfgs(fg, screened_x[sel], maxiter=2000)
    if screened_conv is None:
        screened_conv, hit_maxiter = res.converged, int(np.sum(res.status == "maxiter"))
    best = int(np.argmin(res.f))
    fbest = float(res.f[best])
    tol = 1e-6 * max(abs(fbest), 1e-12)
    at_best = int(np.sum(res.f <= fbest + tol))
    # distinct local optima among converged starts, for the report
    conv = res.converged & np.isfinite(res.f)
    optima = np.unique(np.round(np.r_[res.f[conv], screened_f[finite] if screen == "grid" else []], 10))[:5]
    th = full_theta(res.x[best])[0]
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
            "screen": screen, "tied_exponents": tied,
            "n_starts": int(len(starts)), "n_starts_at_best": at_best,
            "n_starts_converged": int(np.sum(screened_conv)), "n_starts_polished": int(len(sel)),
            "n_starts_hit_maxiter": hit_maxiter,
            "iterations_best": int(res.nit[best] + screen_nit[sel[best]]),
            "status_best": str(res.status[best]), "grad_max_best": float(res.grad_norm[best]),
            "local_optima": optima.tolist(),
            "optimizer": optimizer,
            "median_abs_log_residual": float(np.median(np.abs(r))),
            "share_residuals_beyond_delta": float(np.mean(np.abs(r) > delta)) if loss != "mse" else None}
    if loss != "mse" and info["share_residuals_beyond_delta"] > 0.5:
        info["note"] = (f"{info['share_residuals_beyond_delta']:.0%} of |log residuals| exceed delta={delta:g}: "
                        "the Huber fit behaves like a median (L1) regression")
    ci, samples = {}, None
    if bootstrap and bootstrap > 0:
        rng = np.random.default_rng(seed)
        W = run_bootstrap_counts(table.run, bootstrap, rng)
        fgb = chinchilla_fg(lnN, lnD, lnL, loss=loss, delta=delta, asymmetry=asymmetry, weights=W, tied=tied)
        tick = ReplicateProgress(progress, "approach3", bootstrap)
        rb = batched_lbfgs(fgb, np.repeat(res.x[best][None, :], bootstrap, axis=0), maxiter=2000, progress=tick)
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
    """The multi-start diagnostics (how many starts reached the best objective), tied exponents, the Huber note."""
    info = result.info
    if "n_starts" not in info:
        return []
    if info.get("screen") == "varpro":
        out = [f"variable-projection screen of {info['n_starts']} exponent "
               f"{'values' if info.get('tied_exponents') else 'pairs'}; {info['n_starts_at_best']} of the "
               f"{info['n_starts_polished']} polished starts reached the best objective; best start: "
               f"{info['iterations_best']} iterations ({info['status_best']})"]
    else:
        out = [f"{info['n_starts_at_best']} of {info['n_starts']} starts reached the best objective; "
               f"{info['n_starts_converged']} converged; best start: {info['iterations_best']} iterations "
               f"({info['status_best']})"]
    if info.get("tied_exponents"):
        out.append("tied exponents: alpha = beta (one exponent for N and D, Gadre et al. 2024)")
    return out + ([info["note"]] if info.get("note") else [])


SPEC = MethodSpec(
    name="approach3", fit=fit_approach3, law_form="chinchilla", points="final",
    options=("loss", "delta", "asymmetry", "at_flops", "screen", "tie_exponents"), robust_objective=True, primary_rank=0, frontier=True,
    figure=FigureSpec("plot_parametric", "Approach 3: runs (colour = log10 N), compute-optimal frontier with 95% "
                      "bootstrap band, shaded extrapolation; residuals vs compute."),
    notes=notes, description="Chinchilla parametric E + A/N^alpha + B/D^beta on final losses")
