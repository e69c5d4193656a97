"""Chinchilla Approach 1: minimum over training curves (Hoffmann et al. 2022, Sec. 3.1).

Each run's learning curve (loss vs compute C = 6·N·D at its checkpoints) is interpolated log-log at log-spaced compute
values (Hoffmann used 1,500); at each value the run with the lowest loss gives (N, D = C/(6N)) (values won by the
smallest or largest model of the sweep are not used: the optimum may lie beyond them); then N_opt = k_N·C^a
and D_opt = k_D·C^b by least squares in log-log space. Needs several runs with per-checkpoint rows, ideally runs of
several schedule lengths per size (a point midway through a long cosine schedule overstates the loss of a run
trained to that length; fitting.md §3.4). The bootstrap resamples whole runs.
"""

from __future__ import annotations

import numpy as np

from .common import allocation_bootstrap, allocation_fit, need
from .result import FitResult


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


def envelope(M: np.ndarray, Nrun: np.ndarray, grid: np.ndarray, rows=None):
    """For each grid compute: the N of the lowest-loss run (and that loss). Grid points no run covers are dropped,
    and so are points won by the smallest or largest model of the sweep: there the optimum may lie outside the
    sampled sizes (the envelope analogue of requiring an interior IsoFLOP vertex)."""
    sub = M if rows is None else M[rows]
    Ns = Nrun if rows is None else Nrun[rows]
    filled = np.where(np.isnan(sub), np.inf, sub)
    best = np.argmin(filled, axis=0)
    L = filled[best, np.arange(grid.size)]
    Nb = Ns[best]
    ok = np.isfinite(L) & (Nb > Ns.min()) & (Nb < Ns.max())
    return grid[ok], Nb[ok], L[ok]


def fit_approach1(table, *, bootstrap=1000, seed=0, n_grid=250, at_flops=None) -> FitResult:
    need(table.has_curves, "approach1: needs per-step learning curves (several rows per run: run + tokens or step "
         "+ loss); name the run column with --col run=COLUMN")
    need(table.n_runs >= 3, f"approach1: needs at least 3 runs, got {table.n_runs}")
    need(len(np.unique(table.N)) >= 2, "approach1: all runs have the same size N; need several model sizes")
    grid = np.geomspace(table.C.min(), table.C.max(), n_grid)
    runs, Nrun, M = curve_matrix(table, grid)
    Cg, Ng, Lg = envelope(M, Nrun, grid)
    need(len(np.unique(Ng)) >= 2, "approach1: one run is best at every compute value; the envelope has a single "
         "model size and no allocation exponent can be fitted")
    fitd = allocation_fit(Cg, Ng)
    P = {k: fitd[k] for k in ("k_N", "a", "k_D", "b")}
    a, b, r2a, r2b = fitd["a"], fitd["b"], fitd["r2_N"], fitd["r2_D"]
    af = at_flops if at_flops is not None else float(table.C.max())
    derived = {"a_plus_b": a + b, "r2_N": r2a, "r2_D": r2b, "at_flops": af, "N_opt": P["k_N"] * af**a,
               "D_opt": P["k_D"] * af**b}
    derived["tokens_per_param"] = derived["D_opt"] / derived["N_opt"]
    sizes_on_env = np.unique(Ng)
    warnings = []
    if sizes_on_env.size < 4:
        warnings.append(f"only {sizes_on_env.size} model sizes appear on the envelope: the exponent is coarse")
    info = {"grid_points": int(n_grid), "envelope_points": int(Cg.size), "sizes_on_envelope": sizes_on_env.tolist(),
            "runs": int(runs.size)}
    ci, samples = {}, None
    if bootstrap:
        rng = np.random.default_rng(seed)
        reps = []
        for _ in range(bootstrap):
            c_, n_, _l = envelope(M, Nrun, grid, rng.integers(0, runs.size, runs.size))
            reps.append((c_, n_))
        samples, ci, used = allocation_bootstrap(reps, af)
        info["bootstrap"] = {"replicates": int(bootstrap), "used": used, "resampled": "runs", "seed": seed}
    return FitResult(method="approach1", params=P, n_points=int(Cg.size), objective=None, converged=True, ci95=ci,
                     derived=derived, warnings=tuple(warnings), info=info, samples=samples,
                     plot_data={"C_env": Cg, "N_env": Ng, "L_env": Lg, "C": table.C, "loss": table.loss,
                                "run": table.run, "N": table.N})
