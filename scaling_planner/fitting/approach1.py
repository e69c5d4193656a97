"""Chinchilla Approach 1: minimum over training curves (Hoffmann et al. 2022, Sec. 3.1).

Each run's learning curve (loss vs compute C = 6·N·D at its checkpoints) is interpolated log-log at log-spaced compute
values (Hoffmann used 1,500); at each value the run with the lowest loss gives (N, D = C/(6N)); then
N_opt = k_N·C^a and D_opt = k_D·C^b by least squares in log-log space.

A compute value is used only when its optimum is bracketed: among the model sizes whose curves cover that compute,
the winner is neither the smallest nor the largest, and both the smallest and the largest covering size have a loss
higher than the winner's by more than the noise margin (3x the checkpoint-to-checkpoint noise of the curves, estimated
from the data). Elsewhere the optimum may lie beyond the covering sizes, and the winner is just the covering size
closest to it: with many distinct sizes (a sweep with per-shape sizes) such edge winners pull the exponent towards
the shape of the sampled region (the envelope analogue of requiring an interior IsoFLOP vertex). Curves cover
different compute ranges, so the covering set is taken per compute value, not over the whole sweep.

Needs several runs with per-checkpoint rows, ideally runs of several schedule lengths per size (a point midway through
a long cosine schedule overstates the loss of a run trained to that length; docs/fitting.md §3.4). The bootstrap resamples
whole runs.
"""

from __future__ import annotations

import numpy as np

from .. import laws
from ..errors import ScalePlanError
from .common import (
    ReplicateProgress,
    allocation_bootstrap,
    allocation_fit,
    allocation_problems,
    need,
    require_loss_varies,
)
from .result import FitResult
from .spec import FigureSpec, MethodSpec

NOISE_MARGIN = 3.0  # a bracketing size must be worse than the winner by this many noise s.d. (log loss)


def curve_matrix(table, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(runs, N per run, loss matrix runs x grid) with NaN outside each run's compute range."""
    runs, inv = np.unique(table.run, return_inverse=True)
    lg = np.log(grid)
    M = np.full((runs.size, grid.size), np.nan)
    Nrun = np.zeros(runs.size)
    for i in range(runs.size):
        m = inv == i
        c, l = np.log(table.C[m]), np.log(table.loss[m])
        o = np.argsort(c)
        c, l = c[o], l[o]
        Nrun[i] = np.median(table.N[m])
        if c.size < 2:
            continue
        inside = (lg >= c[0]) & (lg <= c[-1])
        M[i, inside] = np.exp(np.interp(lg[inside], c, l))
    return runs, Nrun, M


def curve_noise(table) -> float:
    """Robust s.d. of checkpoint-to-checkpoint noise in log loss: each interior checkpoint against the straight line
    (log loss vs log compute) through its two neighbours, scaled to one point's noise, MAD over all runs."""
    runs, inv = np.unique(table.run, return_inverse=True)
    out = []
    for i in range(runs.size):
        m = inv == i
        c, l = np.log(table.C[m]), np.log(table.loss[m])
        o = np.argsort(c)
        c, l = c[o], l[o]
        if c.size < 3:
            continue
        span = c[2:] - c[:-2]
        ok = span > 0
        t = (c[1:-1] - c[:-2])[ok] / span[ok]
        r = l[1:-1][ok] - ((1 - t) * l[:-2][ok] + t * l[2:][ok])
        out.append(r / np.sqrt(1 + (1 - t) ** 2 + t**2))
    if not out:
        return 0.0
    r = np.concatenate(out)
    return float(1.4826 * np.median(np.abs(r))) if r.size else 0.0


class Envelope:
    """Per-size lower envelope of log loss on the compute grid, and the bracketed winners (see module docstring)."""

    def __init__(self, M: np.ndarray, Nrun: np.ndarray, grid: np.ndarray, margin: float = 0.0):
        self.grid = grid
        self.margin = float(margin)
        self.order = np.argsort(Nrun, kind="stable")
        self.sizes, self.starts = np.unique(Nrun[self.order], return_index=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.lM = np.where(np.isfinite(M), np.log(M), np.inf)[self.order]

    def __call__(self, rows=None):
        """(C, N, loss, n_unbracketed) of the bracketed envelope points; ``rows`` resamples runs (bootstrap)."""
        lM = self.lM
        if rows is not None:
            use = np.zeros(self.order.size, bool)
            use[np.asarray(rows)] = True
            lM = np.where(use[self.order][:, None], lM, np.inf)
        P = np.minimum.reduceat(lM, self.starts, axis=0)  # (sizes, grid): best log loss of each size; inf: none
        j = np.arange(self.grid.size)
        has = np.isfinite(P).any(axis=0)
        w = winners(P)
        ok = bracketed(P, w, self.margin)
        Pw = P[w, j]
        return self.grid[ok], self.sizes[w[ok]], np.exp(Pw[ok]), int(np.sum(has & ~ok))


def winners(P: np.ndarray) -> np.ndarray:
    """Per compute value (column of the (sizes, grid) log-loss matrix ``P``), the index of the size with the lowest
    loss: the envelope of the training curves (Hoffmann et al. 2022, Sec. 3.1)."""
    return np.argmin(P, axis=0)


def bracketed(P: np.ndarray, w: np.ndarray, margin: float) -> np.ndarray:
    """Mask of the compute values whose winner ``w`` is bracketed: the smallest and the largest size covering that
    compute value (finite in ``P``) both have a log loss above the winner's by more than ``margin`` (so the winner
    is neither of them). See the module docstring for why."""
    cov = np.isfinite(P)
    j = np.arange(P.shape[1])
    has = cov.any(axis=0)
    first = np.argmax(cov, axis=0)
    last = P.shape[0] - 1 - np.argmax(cov[::-1], axis=0)
    Pw = P[w, j]
    with np.errstate(invalid="ignore"):
        return has & (P[first, j] - Pw > margin) & (P[last, j] - Pw > margin)


def envelope(M: np.ndarray, Nrun: np.ndarray, grid: np.ndarray, rows=None, margin: float = 0.0):
    """(C, N, loss) of the bracketed envelope points (see :class:`Envelope`)."""
    return Envelope(M, Nrun, grid, margin)(rows)[:3]


def fit_approach1(table, *, bootstrap=1000, seed=0, n_grid=250, at_flops=None, progress=None) -> FitResult:
    if not table.has_curves:
        raise ScalePlanError("approach1: needs per-step learning curves (several rows per run: run + tokens or step "
                             "+ loss); name the run-id column with col run=COLUMN", param="col")
    need(table.n_runs >= 3, f"approach1: needs at least 3 runs, got {table.n_runs}")
    need(len(np.unique(table.N)) >= 3, f"approach1: needs at least 3 model sizes (the optimum must be bracketed by a "
         f"smaller and a larger size), got {len(np.unique(table.N))}")
    require_loss_varies(table.loss, "approach1")
    grid = np.geomspace(table.C.min(), table.C.max(), n_grid)
    runs, Nrun, M = curve_matrix(table, grid)
    noise = curve_noise(table)
    env = Envelope(M, Nrun, grid, NOISE_MARGIN * noise)
    Cg, Ng, Lg, n_unbr = env()
    need(len(np.unique(Ng)) >= 2 and Cg.size >= max(10, n_grid // 25),
         f"approach1: the optimum is bracketed at too few compute values ({Cg.size} of {n_grid}, won by "
         f"{len(np.unique(Ng))} size(s)): at every other compute value the lowest loss belongs to the smallest or "
         "largest model covering it, or the sizes around it are within the noise; the sweep does not bracket the "
         "compute-optimal size (add smaller/larger models or longer runs)")
    fitd = allocation_fit(Cg, Ng)
    P = {k: fitd[k] for k in ("k_N", "a", "k_D", "b")}
    a, b, r2a, r2b = fitd["a"], fitd["b"], fitd["r2_N"], fitd["r2_D"]
    af = at_flops if at_flops is not None else float(table.C.max())
    derived = {"a_plus_b": a + b, "r2_N": r2a, "r2_D": r2b, "at_flops": af,
               "N_opt": float(laws.allocation_value(af, P["k_N"], a)), "D_opt": float(laws.allocation_value(af, P["k_D"], b))}
    derived["tokens_per_param"] = derived["D_opt"] / derived["N_opt"]
    sizes_on_env = np.unique(Ng)
    warnings = []
    problems = allocation_problems(P, derived)
    if sizes_on_env.size < 4:
        warnings.append(f"only {sizes_on_env.size} model sizes appear on the envelope: the exponent is coarse")
    info = {"grid_points": int(n_grid), "envelope_points": int(Cg.size), "sizes_on_envelope": sizes_on_env.tolist(),
            "runs": int(runs.size), "unbracketed_grid_points": n_unbr, "curve_noise_log_loss": noise,
            "bracket_margin_log_loss": env.margin,
            "rule": "compute values whose winner is the smallest or largest size covering them, or beats them by no "
                    f"more than {NOISE_MARGIN:g}x the curve noise, are not used"}
    ci, samples = {}, None
    if bootstrap:
        rng = np.random.default_rng(seed)
        tick = ReplicateProgress(progress, "approach1", bootstrap)
        reps = []
        for i in range(bootstrap):
            c_, n_, _l, _u = env(rng.integers(0, runs.size, runs.size))
            reps.append((c_, n_))
            tick(i + 1)
        samples, ci, used = allocation_bootstrap(reps, af)
        info["bootstrap"] = {"replicates": int(bootstrap), "used": used, "resampled": "runs", "seed": seed}
    return FitResult(method="approach1", params=P, n_points=int(Cg.size), objective=None, converged=not problems,
                     ci95=ci, derived=derived, warnings=tuple(problems + warnings), info=info, samples=samples,
                     plot_data={"C_env": Cg, "N_env": Ng, "L_env": Lg, "C": table.C, "loss": table.loss,
                                "run": table.run, "N": table.N})


SPEC = MethodSpec(
    name="approach1", fit=fit_approach1, law_form="allocation", points="curves", options=("at_flops",),
    primary_rank=2, frontier=True,
    figure=FigureSpec("plot_envelope", "Approach 1: training curves, their envelope, and N_opt(C)."),
    description="Chinchilla envelope of the per-run training curves")
