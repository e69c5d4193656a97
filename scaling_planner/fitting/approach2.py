"""Chinchilla Approach 2: IsoFLOP profiles (Hoffmann et al. 2022, Sec. 3.2).

Per compute budget, a parabola of loss vs ln N; its vertex is N*(C) and D* = C/(6·N*). A budget gives no vertex,
and is reported with the reason, when the loss is flat across its sizes, when the parabola is not convex, when its
curvature is not distinguishable from noise (one-sided 95% t-test of the quadratic coefficient against its least-squares
standard error; 3-point budgets use the residual variance pooled over the other budgets), or when the vertex lies
outside the sampled range of N (extrapolated vertices are unreliable; docs/fitting.md §3.3). Then power laws of the
vertices: N* = k_N·C^a and D* = k_D·C^b (least squares in log-log space). Budgets come from a ``budget`` column, or
by grouping compute values within a relative tolerance. The bootstrap resamples runs within each budget.
"""

from __future__ import annotations

import numpy as np

from .. import laws
from ..errors import ScalePlanError
from .common import (
    FLAT_REL,
    ReplicateProgress,
    allocation_bootstrap,
    allocation_fit,
    allocation_problems,
    need,
    require_loss_varies,
)
from .result import FitResult
from .spec import FigureSpec, MethodSpec


def group_budgets(table, tol: float = 0.1) -> np.ndarray:
    """Budget label (FLOPs) per point: the ``budget`` column, else C grouped within relative ``tol`` (sorted compute
    values; a new group starts where a value exceeds the group's first by more than ``tol``); a group's label is
    exp(median(ln C)) of its members."""
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


def vertex(xs, ys, c0, c1, c2):
    """(ln N*, loss*) of an IsoFLOP profile: the minimum of its parabola y = c0 + c1·x + c2·x², x = ln N
    (Hoffmann et al. 2022, Sec. 3.2): x* = -c1/(2·c2), y* = c0 - c1²/(4·c2). ``xs``, ``ys`` (the profile's points)
    are not used by the parabola's vertex; coefficients may be arrays (bootstrap replicates)."""
    with np.errstate(all="ignore"):
        return -c1 / (2 * c2), c0 - c1**2 / (4 * c2)


def _curvature_test(xs, ys):
    """(c0, c1, c2, rss, df, inv22) of the least-squares parabola; inv22 = [(VᵀV)^-1]_22 (se(c2)² = s²·inv22)."""
    V = np.stack([np.ones_like(xs), xs, xs**2], axis=1)
    coef, *_ = np.linalg.lstsq(V, ys, rcond=None)
    r = ys - V @ coef
    try:
        inv22 = float(np.linalg.inv(V.T @ V)[2, 2])
    except np.linalg.LinAlgError:
        inv22 = float("nan")
    return (*(float(c) for c in coef), float(r @ r), int(len(xs) - 3), inv22)


def fit_approach2(table, *, bootstrap=1000, seed=0, budget_tol=0.1, at_flops=None, progress=None) -> FitResult:
    from scipy.stats import t as student_t

    require_loss_varies(table.loss, "approach2")
    budgets = group_budgets(table, budget_tol)
    x = np.log(table.N)
    y = table.loss
    uniq = np.unique(budgets)
    need(len(uniq) >= 2, "approach2: needs IsoFLOP groups at 2 or more budgets (a 'budget' column, or runs whose "
         f"compute clusters within {budget_tol:.0%}); found {len(uniq)}")
    vertices, skipped = [], []
    usable = []
    fits = {}
    for C in uniq:
        m = budgets == C
        n_sizes = len(np.unique(table.N[m]))
        if n_sizes < 3:
            skipped.append({"budget": float(C), "kind": "too few sizes",
                            "reason": f"only {n_sizes} model size(s); a parabola needs 3"})
            continue
        fits[C] = _curvature_test(x[m], y[m])
    # residual variance pooled over the budgets that have residual degrees of freedom (for 3-point budgets)
    dfs = sum(f[4] for f in fits.values() if f[4] > 0)
    s2_pooled = sum(f[3] for f in fits.values() if f[4] > 0) / dfs if dfs else float("nan")
    n_untested = 0
    for C, (c0, c1, c2, rss, df, inv22) in fits.items():
        m = budgets == C
        ys = y[m]
        if np.ptp(np.log(ys)) <= FLAT_REL:
            skipped.append({"budget": float(C), "kind": "flat loss", "reason": f"no minimum: the loss is flat across its sizes (every loss "
                            f"is {float(np.mean(ys)):.6g})"})
            continue
        if c2 <= 0:
            skipped.append({"budget": float(C), "kind": "opens downward",
                            "reason": "no minimum: the parabola opens downward"})
            continue
        s2, dft = (rss / df, df) if df > 0 else (s2_pooled, dfs)
        if dft > 0 and np.isfinite(s2) and np.isfinite(inv22):
            se = float(np.sqrt(max(s2, 0.0) * inv22))
            tcrit = float(student_t.ppf(0.95, dft))
            tval = c2 / se if se > 0 else float("inf")
            if tval <= tcrit:
                skipped.append({"budget": float(C), "kind": "curvature within the noise",
                                "reason": f"no clear minimum: the parabola's curvature {c2:.3g} "
                                f"is {tval:.2f} standard errors above zero, within the noise (needs more than "
                                f"{tcrit:.2f})", "curvature_t": tval})
                continue
        else:
            tval = None
            n_untested += 1
        xv, lv = vertex(x[m], ys, c0, c1, c2)
        if not (x[m].min() < xv < x[m].max()):
            skipped.append({"budget": float(C), "kind": "vertex outside the sampled sizes",
                            "reason": f"vertex N*={np.exp(xv):.3g} lies outside the sampled "
                            f"range {table.N[m].min():.3g}–{table.N[m].max():.3g}"})
            continue
        Nv = float(np.exp(xv))
        vertices.append({"budget": float(C), "N_opt": Nv, "D_opt": float(C / (6 * Nv)),
                         "loss_opt": float(lv), "n_points": int(m.sum()),
                         "curvature": float(c2), "curvature_t": tval})
        usable.append(C)
    order = np.argsort([v["budget"] for v in vertices])
    vertices = [vertices[i] for i in order]
    usable = [usable[i] for i in order]
    skipped.sort(key=lambda s_: s_["budget"])
    if len(vertices) < 2:
        if len(skipped) <= 5:
            reasons = "; ".join(f"{s['budget']:.3g}: {s['reason']}" for s in skipped)
        else:  # one line per kind of failure, with one example
            kinds: dict[str, list] = {}
            for s_ in skipped:
                kinds.setdefault(s_["kind"], []).append(s_)
            reasons = f"{len(skipped)} budgets: " + "; ".join(
                f"{len(v)} {k} (e.g. {v[0]['budget']:.3g}: {v[0]['reason']})" for k, v in kinds.items())
        raise ScalePlanError(f"approach2: only {len(vertices)} budget(s) have an interior IsoFLOP minimum; need 2 "
                             f"or more ({reasons})")
    Cv = np.array([v["budget"] for v in vertices])
    Nv = np.array([v["N_opt"] for v in vertices])
    fitd = allocation_fit(Cv, Nv)
    P = {k: fitd[k] for k in ("k_N", "a", "k_D", "b")}
    a, b, r2a, r2b = fitd["a"], fitd["b"], fitd["r2_N"], fitd["r2_D"]
    af = at_flops if at_flops is not None else float(table.C.max())
    derived = {"a_plus_b": a + b, "r2_N": r2a, "r2_D": r2b, "at_flops": af,
               "N_opt": float(laws.allocation_value(af, P["k_N"], a)),
               "D_opt": float(laws.allocation_value(af, P["k_D"], b))}
    derived["tokens_per_param"] = derived["D_opt"] / derived["N_opt"]
    if len(skipped) <= 3:
        warnings = [f"budget {s['budget']:.3g} FLOPs not used: {s['reason']}" for s in skipped]
    else:
        kinds = {}
        for s_ in skipped:
            kinds[s_["kind"]] = kinds.get(s_["kind"], 0) + 1
        warnings = [f"{len(skipped)} of {len(uniq)} budgets not used (" + ", ".join(f"{v} {k}" for k, v in
                    kinds.items()) + "; see info.skipped_budgets)"]
    if len(vertices) == 2:
        warnings.append("only 2 budgets with interior minima: the exponents are exactly determined, not fitted")
    if n_untested:
        warnings.append(f"{n_untested} IsoFLOP parabola(s) could not be tested against noise (3 points and no other "
                        "budget with spare points to estimate the noise): their vertices are used untested")
    problems = allocation_problems(P, derived)
    if len(set(np.round(np.log(Nv), 9))) < 2:
        problems.append(f"every IsoFLOP vertex is at the same model size ({Nv[0]:.3g}): the size does not move "
                        "with compute, so no allocation exponent can be measured")
    ci, samples = {}, None
    info = {"vertices": vertices, "skipped_budgets": skipped, "budget_source": "budget column"
            if table.budget is not None else f"compute grouped within {budget_tol:.0%}"}
    if bootstrap:
        rng = np.random.default_rng(seed)
        R = bootstrap
        tick = ReplicateProgress(progress, "approach2", R)
        Nb = np.full((R, len(usable)), np.nan)
        for j, C in enumerate(usable):
            m = np.flatnonzero(budgets == C)
            # resample the runs of this budget (each point of an IsoFLOP profile is one run)
            W = np.zeros((R, m.size))
            draws = rng.integers(0, m.size, size=(R, m.size))
            np.add.at(W, (np.arange(R)[:, None], draws), 1.0)
            coef = _parabolas(x[m], y[m], np.zeros(m.size), W)[0.0]
            xv = np.broadcast_to(vertex(x[m], y[m], coef[:, 0], coef[:, 1], coef[:, 2])[0], (R,))
            ok = (coef[:, 2] > 0) & (xv > x[m].min()) & (xv < x[m].max())
            Nb[ok, j] = np.exp(xv[ok])
            tick(R * (j + 1) // len(usable))  # the replicates are solved budget by budget
        good = np.isfinite(Nb).sum(axis=1) >= 2
        samples, ci, used = allocation_bootstrap(
            ((Cv[np.isfinite(r)], r[np.isfinite(r)]) for r in Nb[good]), af)
        info["bootstrap"] = {"replicates": R, "used": used, "resampled": "runs within each budget", "seed": seed}
    return FitResult(method="approach2", params=P, n_points=int(sum(v["n_points"] for v in vertices)),
                     objective=None, converged=not problems, ci95=ci, derived=derived,
                     warnings=tuple(problems + warnings), info=info,
                     samples=samples, plot_data={"N": table.N, "loss": table.loss, "budgets": budgets})


def notes(result: FitResult) -> list[str]:
    """How many IsoFLOP vertices the allocation was fitted to."""
    return [f"{len(result.info['vertices'])} IsoFLOP vertices used"] if "vertices" in result.info else []


SPEC = MethodSpec(
    name="approach2", fit=fit_approach2, law_form="allocation", points="final", options=("budget_tol", "at_flops"),
    primary_rank=1, frontier=True, notes=notes,
    figure=FigureSpec("plot_isoflop", "Approach 2: IsoFLOP parabolas and vertices; N_opt(C) power law."),
    description="Chinchilla IsoFLOP parabolas on final losses")
