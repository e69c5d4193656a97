"""The data-constrained scaling law of Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models", Eq. 5),
fitted to runs that repeat their data (docs/fitting.md §3.9).

L = E + A/N′^alpha + B/D′^beta with effective D′ = U_D + U_D·R_D*·(1 − exp(−R_D/R_D*)) and
N′ = U_N + U_N·R_N*·(1 − exp(−R_N/R_N*)): U_D the unique tokens, R_D = D/U_D − 1 the repetitions beyond the first
epoch, U_N = min(N, N_opt(U_D)) the Chinchilla-optimal size for the unique tokens and R_N = N/U_N − 1 the excess
parameters (formulas: ``laws.repetition_terms``, ``laws.repetition_effective``).

Their procedure (``huggingface/datablations`` ``utils/parametric_fit.ipynb``, cells 7 and 29), in two stages:

1. **Base law** E, A, B, alpha, beta: given (``base_law``; the paper took them from a fit to Chinchilla-style IsoFLOP
   points on C4), or fitted here to the single-epoch runs (D ≤ U) with the Approach 3 recipe (§3.1).
2. **Decay constants** R_D*, R_N* with the base fixed, on every run: Huber (delta 1e-3) on log loss, summed, as in
   the paper; parametrised as ln R*, multi-start (:data:`STARTS`), batched L-BFGS at ftol 1e-15 / gtol 1e-12.

The bootstrap resamples runs and re-converges both stages per replicate from the point estimate (a given base stays
fixed). The fitted law (form ``data_constrained``) answers ``loss(N, D, unique_tokens=U)``; without ``unique_tokens``
it is the fresh-data Chinchilla law, and ``optimal(C)`` is the fresh-data optimum.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from .. import laws
from ..errors import ScalePlanError
from . import common
from .common import ReplicateProgress, need, nonfinite_problems, require_loss_varies, run_bootstrap_weights
from .objective import _finite, chinchilla_fg, rho_psi
from .optim import batched_lbfgs
from .result import FitResult
from .spec import MethodSpec

BASE = ("E", "A", "B", "alpha", "beta")
PARAMS = (*BASE, "R_D_star", "R_N_star")
# Published decay constants on C4 (Muennighoff et al. 2023, Sec. 5; huggingface/datablations README "Parametric Fit",
# utils/parametric_fit.ipynb cell 29 @ 1370131): shown beside the fitted ones.
PUBLISHED = {"R_D_star": 15.387756, "R_N_star": 5.309743}
# Starts of stage 2 (scaleplan): every pair of R_D*, R_N* in {1, 3, 10, 30, 100} (the paper: {0, 6.7, 13.3, 20}).
STARTS = np.log(np.array(list(itertools.product((1.0, 3.0, 10.0, 30.0, 100.0), repeat=2))))
SINGLE_EPOCH_REL = 1e-9  # D <= U·(1 + this): a single-epoch run
UNIDENTIFIED = 1e6  # a fitted R* beyond this means the data show no decay (R* -> infinity)
LN_R_MAX = 50.0  # ln R* is clipped to ±50 (R* in 2e-22 .. 5e21) so that no number overflows


def _base_params(base_law) -> dict[str, float]:
    """E, A, B, alpha, beta of ``base_law`` (a ScalingLaw of form chinchilla or data_constrained, or a mapping)."""
    params = getattr(base_law, "params", base_law)
    form = getattr(base_law, "form", None)
    if not isinstance(params, Mapping) or any(k not in params for k in BASE) or form not in (None, "chinchilla",
                                                                                             "data_constrained"):
        raise ScalePlanError("base_law must be a Chinchilla-form law (E, A, B, alpha, beta), e.g. the catalogue's "
                             "muennighoff2023 or chinchilla-approach3", param="base_law")
    return {k: float(params[k]) for k in BASE}


def _stage2_fg(lnL, terms, base, *, loss="huber", delta=1e-3, asymmetry=10.0, weights=None):
    """Objective and gradient over theta = (ln R_D*, ln R_N*) with the base law fixed. ``terms`` = (U_N, R_N, U_D,
    R_D), each (n,) or (R, n) (one row per problem); ``base`` values scalars or (R,); ``weights`` None or (R, n)."""
    terms = tuple(np.asarray(t, dtype=float) for t in np.broadcast_arrays(*terms))
    per_row = terms[0].ndim == 2

    def fg(theta, rows):
        def pick(v):
            v = np.asarray(v, dtype=float)
            return v[rows][:, None] if v.ndim == 1 else v

        uN, rN, uD, rD = (t[rows] if per_row else t[None, :] for t in terms)
        E, A, B, al, be = (pick(base[k]) for k in BASE)
        sD, sN = (np.exp(np.clip(theta[:, i:i + 1], -LN_R_MAX, LN_R_MAX)) for i in (0, 1))
        with np.errstate(all="ignore"):
            Dp = laws.repetition_effective(uD, rD, sD)
            Np = laws.repetition_effective(uN, rN, sN)
            L = laws.chinchilla_loss(Np, Dp, E, A, B, al, be)
            r = np.log(L) - lnL
            rho, psi = rho_psi(r, loss, delta, asymmetry)
            if weights is not None:
                rho, psi = rho * weights[rows], psi * weights[rows]
            # d D'/d ln R* = U·R*·[(1 − e^−x) − x·e^−x], x = R/R* (derivative of laws.repetition_effective)
            xD, xN = rD / sD, rN / sN
            dD = uD * sD * (-np.expm1(-xD) - xD * np.exp(-xD))
            dN = uN * sN * (-np.expm1(-xN) - xN * np.exp(-xN))
            q = psi / L
            g = np.stack([(q * (-be * B * Dp ** (-be - 1) * dD)).sum(axis=1),
                          (q * (-al * A * Np ** (-al - 1) * dN)).sum(axis=1)], axis=1)
        return _finite(rho.sum(axis=1), g)

    return fg


def _base_theta(P: Mapping[str, float]) -> np.ndarray:
    """Approach 3's parameter vector (a, b, e, alpha, beta) = (ln A, ln B, ln E, alpha, beta)."""
    return np.array([np.log(P["A"]), np.log(P["B"]), np.log(P["E"]), P["alpha"], P["beta"]])


def epochs_value(R_D_star, epochs):
    """D′/D after ``epochs`` passes over the unique data: what the repeated tokens are worth, per token, relative to
    fresh ones (``laws.repetition_effective`` with U = 1, R = epochs − 1)."""
    return laws.repetition_effective(1.0, epochs - 1.0, R_D_star) / epochs


def _fit_base(table, single, *, loss, delta, asymmetry, at_flops, rounds: int = 5):
    """Stage 1: E, A, B, alpha, beta by the Approach 3 recipe on the single-epoch runs that are not over-parameterised
    for their data (R_N = 0: N <= N_opt(D) under the law being fitted; Muennighoff et al.'s N′ discounts the excess
    parameters of the others even at one epoch). Starts from every single-epoch run, then refits on the runs with
    R_N = 0 until that set stops changing (at most ``rounds`` refits, each from the previous optimum). Returns
    (base params, the rows used, the Approach 3 FitResult)."""
    from .approach3 import fit_approach3

    N, D, U = table.N, table.D, table.U
    need(int(single.sum()) >= 6, f"data_constrained: the base law is fitted to the single-epoch runs (D <= U) and "
         f"needs at least 6 of them, got {int(single.sum())}; or pass base_law (--base-law LAW)")
    rows, grid = single.copy(), None
    for i in range(rounds):
        try:
            b3 = fit_approach3(table.subset(rows), loss=loss, delta=delta, asymmetry=asymmetry, bootstrap=0,
                               at_flops=at_flops, grid=grid)
        except ScalePlanError as e:
            raise ScalePlanError(f"data_constrained: the base fit on the single-epoch runs failed: "
                                 f"{str(e).split(': ', 1)[-1]}") from None
        P = b3.params
        R_N = laws.repetition_terms(N, D, U, P["A"], P["B"], P["alpha"], P["beta"])[1]
        new = single & (R_N <= 0)
        if new.sum() < 6 or np.array_equal(new, rows) or i == rounds - 1:
            break
        rows, grid = new, _base_theta(P)[None, :]
    return {k: float(b3.params[k]) for k in BASE}, rows, b3


def fit_data_constrained(table, *, bootstrap=1000, seed=0, loss="huber", delta=1e-3, asymmetry=10.0, at_flops=None,
                         base_law=None, progress=None, starts: np.ndarray | None = None) -> FitResult:
    """Fit R_D*, R_N* (and, without ``base_law``, E, A, B, alpha, beta on the single-epoch runs) to a table with
    unique tokens ``table.U`` (docs/fitting.md §3.9). ``base_law``: a Chinchilla-form ScalingLaw or a mapping of
    E, A, B, alpha, beta, kept fixed. ``starts``: (R_D*, R_N*) pairs to start stage 2 from (default :data:`STARTS`)."""
    from .approach3 import DERIVED_ALLOCATION, derived_quantities, theta_to_params

    require_loss_varies(table.loss, "data_constrained")
    need(table.U is not None, "data_constrained: needs the unique tokens of each run: a U column (--col U=COLUMN) "
         "or an epochs column (--col epochs=COLUMN; U = D/epochs)")
    U = np.asarray(table.U, dtype=float)
    need(bool(np.all(np.isfinite(U) & (U > 0))), f"data_constrained: {int(np.sum(~np.isfinite(U)))} run(s) have no "
         "unique-token count; give U (or epochs) for every run")
    N, D, lnL = np.asarray(table.N, float), np.asarray(table.D, float), np.log(table.loss)
    single = D <= U * (1 + SINGLE_EPOCH_REL)
    need(bool((~single).any()), "data_constrained: no run repeats its data (every D <= U), so the decay of repeated "
         "data cannot be measured; this is the fresh-data case, fit approach3")
    warnings: list[str] = []
    if base_law is None:
        base, base_rows, b3 = _fit_base(table, single, loss=loss, delta=delta, asymmetry=asymmetry, at_flops=at_flops)
        base_how = (f"fitted to {int(base_rows.sum())} single-epoch runs with N <= N_opt(D) (of "
                    f"{int(single.sum())} single-epoch runs; Approach 3 recipe)")
        warnings += [f"base fit: {w}" for w in b3.warnings]
        base_ok = b3.converged
    else:
        base = _base_params(base_law)
        base_how = f"taken from {getattr(base_law, 'name', 'base_law')} (fixed)"
        base_ok = True
    terms = laws.repetition_terms(N, D, U, base["A"], base["B"], base["alpha"], base["beta"])
    U_N, R_N, U_D, R_D = terms
    problems: list[str] = []
    if not base_ok:
        problems.append("the base law fitted to the single-epoch runs is not usable (see its warnings)")
    st = STARTS if starts is None else np.atleast_2d(np.log(np.asarray(starts, dtype=float)))
    fg = _stage2_fg(lnL, terms, base, loss=loss, delta=delta, asymmetry=asymmetry)
    res = batched_lbfgs(fg, st, maxiter=2000)
    best = int(np.argmin(res.f))
    fbest = float(res.f[best])
    th = np.clip(res.x[best], -LN_R_MAX, LN_R_MAX)
    R_D_star, R_N_star = (float(v) for v in np.exp(th))
    at_best = int(np.sum(res.f <= fbest + 1e-6 * max(abs(fbest), 1e-12)))
    conv = res.converged & np.isfinite(res.f)
    optima = []
    for i in np.argsort(res.f):
        if conv[i] and not any(abs(res.f[i] - o[0]) <= 1e-9 * max(abs(fbest), 1e-12) for o in optima):
            optima.append((float(res.f[i]), *(float(v) for v in np.exp(np.clip(res.x[i], -LN_R_MAX, LN_R_MAX)))))
    P = {**base, "R_D_star": R_D_star, "R_N_star": R_N_star}
    if not (R_N > 0).any():
        problems.append("R_N* is not determined by the data: no run has more parameters than the compute-optimal size "
                        "for its unique tokens (R_N = 0 everywhere)")
    for k, v in (("R_D_star", R_D_star), ("R_N_star", R_N_star)):
        if np.isfinite(v) and v > UNIDENTIFIED:
            problems.append(f"{k} ran to {v:.3g}: the data show no decay of "
                            + ("repeated tokens" if k == "R_D_star" else "excess parameters") + " (R* -> infinity)")
    problems += nonfinite_problems(P, "the fitted parameter")
    if not res.converged[best]:
        problems.append(f"the optimiser stopped without converging ({res.status[best]}, max |gradient| "
                        f"{res.grad_norm[best]:.2g})")
    if at_best < 2 and len(optima) > 1:
        warnings.append("only one start reached the best objective: the optimum may not be global")
    af = at_flops if at_flops is not None else float(table.C.max())
    derived = {k: float(np.asarray(v).ravel()[0]) for k, v in
               derived_quantities({k: np.array([v]) for k, v in base.items()}, af).items()}
    derived["at_flops"] = af
    derived.update(value_4_epochs=float(epochs_value(R_D_star, 4.0)), value_16_epochs=float(epochs_value(R_D_star,
                                                                                                        16.0)))
    with np.errstate(all="ignore"):
        Np, Dp = laws.data_constrained_effective(N, D, U, *(P[k] for k in ("A", "B", "alpha", "beta", "R_D_star",
                                                                           "R_N_star")))
        r = np.log(laws.chinchilla_loss(Np, Dp, *(P[k] for k in BASE))) - lnL
    epochs = D / np.minimum(U, D)
    info = {"loss": loss, "huber_delta": delta if loss != "mse" else None, "reduction": "sum", "base": base_how,
            "n_single_epoch": int(single.sum()), "n_repeated": int((R_D > 0).sum()),
            "n_excess_params": int((R_N > 0).sum()), "max_epochs": float(epochs.max()),
            "n_starts": int(len(st)), "n_starts_at_best": at_best, "n_starts_converged": int(conv.sum()),
            "local_optima": [{"objective": f, "R_D_star": a, "R_N_star": b} for f, a, b in optima[:5]],
            "median_abs_log_residual": float(np.median(np.abs(r))),
            "published": {**PUBLISHED, "source": "Muennighoff et al. 2023 (C4), huggingface/datablations README"}}
    ci, samples = {}, None
    if bootstrap and bootstrap > 0:
        rng = np.random.default_rng(seed)
        W = run_bootstrap_weights(table.run, bootstrap, rng)
        tick = ReplicateProgress(progress, "data_constrained", bootstrap)
        if base_law is None:  # stage 1 per replicate: the base refitted to its resampled runs
            s = np.flatnonzero(base_rows)
            fgb = chinchilla_fg(np.log(N[s]), np.log(D[s]), lnL[s], loss=loss, delta=delta, asymmetry=asymmetry,
                                weights=W[:, s])
            rb1 = batched_lbfgs(fgb, np.repeat(_base_theta(base)[None, :], bootstrap, axis=0), maxiter=2000)
            Pb = theta_to_params(rb1.x)
            ok1 = rb1.converged & np.isfinite(rb1.f)
            tb = laws.repetition_terms(N[None, :], D[None, :], U[None, :], Pb["A"][:, None], Pb["B"][:, None],
                                       Pb["alpha"][:, None], Pb["beta"][:, None])
            fgb2 = _stage2_fg(lnL, tb, Pb, loss=loss, delta=delta, asymmetry=asymmetry, weights=W)
        else:
            Pb = {k: np.full(bootstrap, v) for k, v in base.items()}
            ok1 = np.ones(bootstrap, dtype=bool)
            fgb2 = _stage2_fg(lnL, terms, base, loss=loss, delta=delta, asymmetry=asymmetry, weights=W)
        rb = batched_lbfgs(fgb2, np.repeat(th[None, :], bootstrap, axis=0), maxiter=2000, progress=tick)
        ok = ok1 & rb.converged & np.isfinite(rb.f)
        Rb = np.exp(np.clip(rb.x, -LN_R_MAX, LN_R_MAX))
        Pb = {**Pb, "R_D_star": Rb[:, 0], "R_N_star": Rb[:, 1]}
        keys = PARAMS if base_law is None else ("R_D_star", "R_N_star")
        samples = {k: np.asarray(Pb[k])[ok] for k in keys}
        for k in keys:
            ci[k] = common.percentile_ci(samples[k])
        if base_law is None:
            for k, v in derived_quantities({k: Pb[k][ok] for k in BASE}, af).items():
                ci[k] = common.percentile_ci(v)
        for e in (4, 16):
            ci[f"value_{e}_epochs"] = common.percentile_ci(epochs_value(Rb[ok, 0], float(e)))
        info["bootstrap"] = {"replicates": int(bootstrap), "converged": int(ok.sum()), "resampled": "runs",
                             "base": "refitted per replicate" if base_law is None else "fixed", "seed": seed}
        if ok.sum() < 0.9 * bootstrap:
            warnings.append(f"only {int(ok.sum())} of {bootstrap} bootstrap replicates converged")
        for k in ("R_D_star", "R_N_star"):
            lo, hi = ci[k]
            if np.isfinite(lo) and np.isfinite(hi) and hi > 10 * max(lo, 1e-12):
                warnings.append(f"{k} is poorly identified: its 95% interval spans {lo:.3g}–{hi:.3g}")
    if problems:
        derived.update({k: float("nan") for k in DERIVED_ALLOCATION})
        for k in DERIVED_ALLOCATION:
            ci.pop(k, None)
    return FitResult(method="data_constrained", params=P, n_points=len(table), objective=fbest,
                     converged=bool(res.converged[best]) and not problems, ci95=ci, derived=derived,
                     warnings=tuple(problems + warnings), info=info, samples=samples,
                     plot_data={"N": N, "D": D, "U": U, "C": table.C, "loss": table.loss})


# ---------------------------------------------------------------------------------------------- registry entry
def notes(result: FitResult) -> list[str]:
    """Where the base law came from, what the data repeat, and the fitted decay constants beside the published."""
    info = result.info
    if "base" not in info:
        return []

    def show(k):
        v, ci = result.params[k], result.ci95.get(k)
        return f"{v:.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and all(np.isfinite(ci)) else "")

    out = [f"base E, A, B, alpha, beta: {info['base']}",
           f"{info['n_repeated']} runs repeat their data (up to {info['max_epochs']:.3g} epochs); "
           f"{info['n_excess_params']} have more parameters than compute-optimal for their unique tokens",
           f"R_D* = {show('R_D_star')}, R_N* = {show('R_N_star')}; Muennighoff et al. 2023 (C4): R_D* = "
           f"{PUBLISHED['R_D_star']:.2f}, R_N* = {PUBLISHED['R_N_star']:.2f}",
           f"a repeated token is worth {result.derived['value_4_epochs']:.0%} of a fresh one at 4 epochs, "
           f"{result.derived['value_16_epochs']:.0%} at 16 (D′/D)",
           f"{info['n_starts_at_best']} of {info['n_starts']} starts reached the best objective"]
    if len(info.get("local_optima", [])) > 1:
        out.append("other local optima (objective, R_D*, R_N*): " + "; ".join(
            f"{o['objective']:.6g}, {o['R_D_star']:.3g}, {o['R_N_star']:.3g}" for o in info["local_optima"][1:4]))
    return out


SPEC = MethodSpec(
    name="data_constrained", fit=fit_data_constrained, law_form="data_constrained", points="final",
    options=("loss", "delta", "asymmetry", "at_flops", "base_law"), robust_objective=True, primary_rank=7,
    notes=notes, description="Muennighoff et al. repeated-data law, R_D* and R_N*, on runs with a unique-tokens or epochs column")
