"""Chinchilla Approach 2: IsoFLOP profiles (Hoffmann et al. 2022, Sec. 3.2).

Per compute budget, a parabola of loss vs ln N; its vertex is N*(C) and D* = C/(6·N*). A vertex outside the sampled
range of N is not used and is reported (extrapolated vertices are unreliable; fitting.md §3.3). Then power laws of the
vertices: N* = k_N·C^a and D* = k_D·C^b (least squares in log-log space). Budgets come from a ``budget`` column, or
by grouping compute values within a relative tolerance. The bootstrap resamples runs within each budget.
"""

from __future__ import annotations

import numpy as np

from ..errors import ScalePlanError
from .common import allocation_bootstrap, allocation_fit, need
from .result import FitResult


def group_budgets(table, tol: float = 0.1) -> np.ndarray:
    """Budget label (FLOPs) per point: the ``budget`` column, else C grouped within relative ``tol``."""
    if table.budget is not None and np.all(np.isfinite(table.budget)):
        return np.asarray(table.budget, dtype=float)
    lc = np.log(table.C)
    order = np.argsort(lc)
    labels = np.empty(len(lc))
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order) or lc[order[i]] - lc[order[start]] > np.log1p(tol):
            members = order[start:i]
            labels[members] = float(np.exp(np.median(lc[members])))
            start = i
    return labels


def _parabolas(x, y, groups, W=None):
    """Weighted quadratic fits y = c0 + c1 x + c2 x² per group; returns dict group -> (c0, c1, c2) arrays (R,)."""
    out = {}
    for gval in np.unique(groups):
        m = groups == gval
        xs, ys = x[m], y[m]
        V = np.stack([np.ones_like(xs), xs, xs**2], axis=1)
        if W is None:
            coef, *_ = np.linalg.lstsq(V, ys, rcond=None)
            out[gval] = coef[None, :]
        else:
            w = W[:, m]
            # normal equations per replicate: (Vᵀ diag(w) V) c = Vᵀ diag(w) y
            A = np.einsum("rn,ni,nj->rij", w, V, V)
            bvec = np.einsum("rn,ni,n->ri", w, V, ys)
            det_ok = np.abs(np.linalg.det(A)) > 1e-12
            coef = np.full((w.shape[0], 3), np.nan)
            if det_ok.any():
                coef[det_ok] = np.linalg.solve(A[det_ok], bvec[det_ok][..., None])[..., 0]
            out[gval] = coef
    return out


def fit_approach2(table, *, bootstrap=1000, seed=0, budget_tol=0.1, at_flops=None) -> FitResult:
    budgets = group_budgets(table, budget_tol)
    x = np.log(table.N)
    y = table.loss
    uniq = np.unique(budgets)
    need(len(uniq) >= 2, "approach2: needs IsoFLOP groups at 2 or more budgets (a 'budget' column, or runs whose "
         f"compute clusters within {budget_tol:.0%}); found {len(uniq)}")
    vertices, skipped = [], []
    usable = []
    for C in uniq:
        m = budgets == C
        n_sizes = len(np.unique(table.N[m]))
        if n_sizes < 3:
            skipped.append({"budget": float(C), "reason": f"only {n_sizes} model size(s); a parabola needs 3"})
            continue
        c0, c1, c2 = _parabolas(x[m], y[m], np.zeros(m.sum()))[0.0][0]
        if c2 <= 0:
            skipped.append({"budget": float(C), "reason": "no minimum: the parabola opens downward"})
            continue
        xv = -c1 / (2 * c2)
        if not (x[m].min() < xv < x[m].max()):
            skipped.append({"budget": float(C), "reason": f"vertex N*={np.exp(xv):.3g} lies outside the sampled "
                            f"range {table.N[m].min():.3g}–{table.N[m].max():.3g}"})
            continue
        Nv = float(np.exp(xv))
        vertices.append({"budget": float(C), "N_opt": Nv, "D_opt": float(C / (6 * Nv)),
                         "loss_opt": float(c0 - c1**2 / (4 * c2)), "n_points": int(m.sum()),
                         "curvature": float(c2)})
        usable.append(C)
    if len(vertices) < 2:
        reasons = "; ".join(f"{s['budget']:.3g}: {s['reason']}" for s in skipped)
        raise ScalePlanError(f"approach2: only {len(vertices)} budget(s) have an interior IsoFLOP minimum; need 2 "
                             f"or more ({reasons})")
    Cv = np.array([v["budget"] for v in vertices])
    Nv = np.array([v["N_opt"] for v in vertices])
    fitd = allocation_fit(Cv, Nv)
    P = {k: fitd[k] for k in ("k_N", "a", "k_D", "b")}
    a, b, r2a, r2b = fitd["a"], fitd["b"], fitd["r2_N"], fitd["r2_D"]
    af = at_flops if at_flops is not None else float(Cv.max())
    derived = {"a_plus_b": a + b, "r2_N": r2a, "r2_D": r2b, "at_flops": af, "N_opt": P["k_N"] * af**a,
               "D_opt": P["k_D"] * af**b}
    derived["tokens_per_param"] = derived["D_opt"] / derived["N_opt"]
    if len(skipped) <= 3:
        warnings = [f"budget {s['budget']:.3g} FLOPs not used: {s['reason']}" for s in skipped]
    else:
        warnings = [f"{len(skipped)} of {len(uniq)} budgets not used (too few sizes or no interior minimum; see "
                    "info.skipped_budgets)"]
    if len(vertices) == 2:
        warnings.append("only 2 budgets with interior minima: the exponents are exactly determined, not fitted")
    ci, samples = {}, None
    info = {"vertices": vertices, "skipped_budgets": skipped, "budget_source": "budget column"
            if table.budget is not None else f"compute grouped within {budget_tol:.0%}"}
    if bootstrap:
        rng = np.random.default_rng(seed)
        R = bootstrap
        Nb = np.full((R, len(usable)), np.nan)
        for j, C in enumerate(usable):
            m = np.flatnonzero(budgets == C)
            # resample the runs of this budget (each point of an IsoFLOP profile is one run)
            W = np.zeros((R, m.size))
            draws = rng.integers(0, m.size, size=(R, m.size))
            np.add.at(W, (np.arange(R)[:, None], draws), 1.0)
            coef = _parabolas(x[m], y[m], np.zeros(m.size), W)[0.0]
            with np.errstate(all="ignore"):
                xv = -coef[:, 1] / (2 * coef[:, 2])
            ok = (coef[:, 2] > 0) & (xv > x[m].min()) & (xv < x[m].max())
            Nb[ok, j] = np.exp(xv[ok])
        good = np.isfinite(Nb).sum(axis=1) >= 2
        samples, ci, used = allocation_bootstrap(
            ((Cv[np.isfinite(r)], r[np.isfinite(r)]) for r in Nb[good]), af)
        info["bootstrap"] = {"replicates": R, "used": used, "resampled": "runs within each budget", "seed": seed}
    return FitResult(method="approach2", params=P, n_points=int(sum(v["n_points"] for v in vertices)),
                     objective=None, converged=True, ci95=ci, derived=derived, warnings=tuple(warnings), info=info,
                     samples=samples, plot_data={"N": table.N, "loss": table.loss, "budgets": budgets})
