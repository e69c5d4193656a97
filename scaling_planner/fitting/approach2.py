"""Chinchilla Approach 2: IsoFLOP profiles (Hoffmann et al. 2022, Sec. 3.2), with two ways to find each profile's
minimum (``vertex``; docs/fitting.md §3.3):

* ``parabola`` (default; Hoffmann et al.): per compute budget, a parabola of loss vs ln N on the sizes in a window
  centred on the lowest-loss size (as far on each side as the sampled sizes reach on both: a parabola is a local
  model of the minimum, and an off-centre window moves its vertex); its vertex is N*(C). A budget gives no vertex,
  and is reported with the reason, when the loss is flat across its sizes, when the lowest loss is at the smallest
  or largest size (the minimum is not bracketed), when the parabola is not convex, when its curvature is not
  distinguishable from noise (one-sided 95% t-test of the quadratic coefficient against its least-squares standard
  error; 3-point windows use the residual variance pooled over the other budgets), or when the vertex lies outside
  the window. The bootstrap resamples runs within each budget's window. Then power laws of the vertices:
  N* = k_N·C^a and D* = k_D·C^b (least squares in log-log space).
* ``interpolated`` (Porian et al. 2024, ``formll/resolving-scaling-law-discrepancies`` ``analysis.py``): an Akima
  spline of ln L vs ln N through each budget's points (lowest loss per size), minimised on a grid of 25 points per
  interval; N* is the median minimum over replicates with Gaussian noise (``loss_noise``) added to the losses, each
  budget weighted by 1/std(ln N*)² in the least-squares fit of ln N* on ln C; the 95% interval comes from the fits
  to the noisy replicates.

Budgets come from a ``budget`` column, or by grouping compute values within a relative tolerance.
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
    is_real_finite,
    loglog_fit,
    need,
    percentile_ci,
    require_loss_varies,
)
from .result import FitResult
from .spec import FigureSpec, MethodSpec

VERTICES = ("parabola", "interpolated")
# Porian et al. 2024 (analysis.py, configs.py @ 0dc60d9): the interpolated minimum and its noise bootstrap.
INTERP_PER_INTERVAL = 25  # grid points per interval between sampled sizes (interp_num_multiplier)
MIN_STD_FACTOR = 0.33  # std(ln N*) is at least 0.33 x the average log spacing of the sampled sizes (min_std_factor)
LOSS_NOISE = 0.002  # nats: seed-to-seed std of the loss, their RefinedWeb value (RW_SEED_CONFIG noise_low; 0.01 OWT2)
NOISE_REPLICATES = 1000  # noisy replicates when the bootstrap is off (their bootstrap_iters)


def check_vertex_options(vertex: str, loss_noise: float | None) -> None:
    """ScalePlanError unless ``vertex`` is one of :data:`VERTICES` and ``loss_noise`` is None or a positive number."""
    if vertex not in VERTICES:
        raise ScalePlanError(f"vertex must be one of {', '.join(VERTICES)}, got {vertex!r}", param="vertex")
    if loss_noise is not None and not (is_real_finite(loss_noise) and not isinstance(loss_noise, bool)
                                       and loss_noise > 0):
        raise ScalePlanError(f"loss_noise must be a positive number (the seed-to-seed std of the loss, in its units), "
                             f"got {loss_noise!r}", param="loss_noise")


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


def centred_window(x, y):
    """Mask of the points a budget's parabola is fitted to: those within h of the lowest-loss point in x = ln N,
    h = the smaller of its distances to the smallest and largest sampled x (a window centred on the observed
    minimum), widened when needed to reach the nearest size on the other side too (docs/fitting.md §3.3). All False
    when the lowest loss is at the smallest or largest x."""
    i = int(np.argmin(y))
    left, right = x[i] - x.min(), x.max() - x[i]
    if min(left, right) <= 0:
        return np.zeros(x.shape, dtype=bool)
    d = x - x[i]
    far = d[d > 0] if right > left else -d[d < 0]  # distances to the sizes on the longer side
    h = max(min(left, right), float(far.min()))
    return np.abs(d) <= h * (1 + 1e-9)


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


def _parabola_vertices(table, budgets, uniq):
    """Vertices of the centred-window parabolas; returns (vertices, skipped, windows {budget: row mask}, untested,
    curves {budget: (N, loss)} of the fitted parabolas for the figure)."""
    from scipy.stats import t as student_t

    x = np.log(table.N)
    y = table.loss
    vertices, skipped, windows, curves = [], [], {}, {}
    fits = {}
    for C in uniq:
        m = budgets == C
        n_sizes = len(np.unique(table.N[m]))
        if n_sizes < 3:
            skipped.append({"budget": float(C), "kind": "too few sizes",
                            "reason": f"only {n_sizes} model size(s); a parabola needs 3"})
            continue
        if np.ptp(np.log(y[m])) <= FLAT_REL:
            skipped.append({"budget": float(C), "kind": "flat loss", "reason": f"no minimum: the loss is flat across "
                            f"its sizes (every loss is {float(np.mean(y[m])):.6g})"})
            continue
        win = np.zeros(len(y), dtype=bool)
        win[np.flatnonzero(m)[centred_window(x[m], y[m])]] = True
        n_win = len(np.unique(table.N[win]))
        if n_win < 3:
            edge = "smallest" if x[m][np.argmin(y[m])] <= x[m].min() else "largest"
            skipped.append({"budget": float(C), "kind": "minimum at the edge",
                            "reason": f"no bracketed minimum: the lowest loss is at the {edge} sampled size "
                            f"({np.exp(x[m][np.argmin(y[m])]):.3g}), so the optimum may lie beyond the sampled sizes"})
            continue
        windows[C] = win
        fits[C] = _curvature_test(x[win], y[win])
    # residual variance pooled over the windows that have residual degrees of freedom (for 3-point windows)
    dfs = sum(f[4] for f in fits.values() if f[4] > 0)
    s2_pooled = sum(f[3] for f in fits.values() if f[4] > 0) / dfs if dfs else float("nan")
    n_untested = 0
    for C, (c0, c1, c2, rss, df, inv22) in fits.items():
        w = windows[C]
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
        xv, lv = vertex(x[w], y[w], c0, c1, c2)
        if not (x[w].min() < xv < x[w].max()):
            skipped.append({"budget": float(C), "kind": "vertex outside the sampled sizes",
                            "reason": f"vertex N*={np.exp(xv):.3g} lies outside the sampled "
                            f"range {table.N[w].min():.3g}–{table.N[w].max():.3g}"})
            continue
        Nv = float(np.exp(xv))
        vertices.append({"budget": float(C), "N_opt": Nv, "D_opt": float(C / (6 * Nv)),
                         "loss_opt": float(lv), "n_points": int(w.sum()), "n_points_budget": int((budgets == C).sum()),
                         "window": [float(table.N[w].min()), float(table.N[w].max())],
                         "curvature": float(c2), "curvature_t": tval})
        xs = np.linspace(x[w].min(), x[w].max(), 100)
        curves[float(C)] = (np.exp(xs), c0 + c1 * xs + c2 * xs**2)
    return vertices, skipped, windows, n_untested, curves


def _interpolated_vertices(table, budgets, uniq, noise: float, R: int, rng):
    """Porian et al. 2024 minima (their ``interpolation`` + ``vectorized_interp_with_seed_noise``): returns
    (vertices, skipped, replicate minima {budget: ln N* of the valid noisy replicates}, curves {budget: (N, loss)}
    of the splines for the figure)."""
    from scipy.interpolate import Akima1DInterpolator

    vertices, skipped, reps, curves = [], [], {}, {}
    for C in uniq:
        m = budgets == C
        n, inv = np.unique(table.N[m], return_inverse=True)
        if n.size < 3:
            skipped.append({"budget": float(C), "kind": "too few sizes",
                            "reason": f"only {n.size} model size(s); the interpolated minimum needs 3"})
            continue
        loss = np.full(n.size, np.inf)
        np.minimum.at(loss, inv, table.loss[m])  # the lowest loss per size (their groupby_action 'min')
        if np.ptp(np.log(loss)) <= FLAT_REL:
            skipped.append({"budget": float(C), "kind": "flat loss", "reason": f"no minimum: the loss is flat across "
                            f"its sizes (every loss is {float(np.mean(loss)):.6g})"})
            continue
        k = (n.size - 1) * INTERP_PER_INTERVAL
        lg = np.log(np.geomspace(n[0], n[-1], k))
        ln_n = np.log(n)
        spline = np.exp(Akima1DInterpolator(ln_n, np.log(loss))(lg))
        i0 = int(np.argmin(spline))
        noisy = loss[:, None] + noise * rng.standard_normal((n.size, R))  # additive noise on the loss
        with np.errstate(invalid="ignore"):
            noisy_curves = Akima1DInterpolator(ln_n, np.log(noisy), axis=0)(lg)  # (k, R)
        finite = np.isfinite(noisy_curves)
        idx = np.argmin(np.where(finite, noisy_curves, np.inf), axis=0)
        valid = (idx != 0) & (idx != k - 1) & finite.all(axis=0)
        if i0 in (0, k - 1):
            edge = "smallest" if i0 == 0 else "largest"
            skipped.append({"budget": float(C), "kind": "minimum at the edge",
                            "reason": f"no interior minimum: the interpolated loss is lowest at the {edge} sampled "
                            f"size ({n[0 if i0 == 0 else -1]:.3g})"})
            continue
        if valid.sum() < R // 2:
            skipped.append({"budget": float(C), "kind": "minimum not resolved under the noise",
                            "reason": f"only {valid.mean():.0%} of replicates with loss noise {noise:g} have an "
                            "interior minimum (needs half)"})
            continue
        stars = lg[idx[valid]]
        std = max(float(np.std(stars)), MIN_STD_FACTOR * INTERP_PER_INTERVAL * float(lg[1] - lg[0])) * R / valid.sum()
        Nv = float(np.exp(np.median(stars)))  # the median replicate minimum is the observation (bs_median_as_obs)
        vertices.append({"budget": float(C), "N_opt": Nv, "D_opt": float(C / (6 * Nv)),
                         "loss_opt": float(spline[i0]),
                         "N_interp": float(np.exp(lg[i0])), "n_points": int(m.sum()), "ln_N_std": std,
                         "weight": 1.0 / std**2, "replicates_interior": int(valid.sum())})
        reps[C] = stars
        curves[float(C)] = (np.exp(lg), spline)
    return vertices, skipped, reps, curves


def _weighted_allocation(C, N, w):
    """N* = k_N·C^a, D* = k_D·C^b (D* = C/(6N*)) by weighted least squares in log-log space (Porian et al.'s
    ``power_law_fit(..., weighted=True)``: sklearn LinearRegression with sample_weight 1/std²)."""
    a, ca, r2a, _ = loglog_fit(C, N, w)
    b, cb, r2b, _ = loglog_fit(C, C / (6 * N), w)
    return {"k_N": float(np.exp(ca)), "a": a, "k_D": float(np.exp(cb)), "b": b, "r2_N": r2a, "r2_D": r2b}


def _skip_summary(skipped) -> str:
    if len(skipped) <= 5:
        return "; ".join(f"{s['budget']:.3g}: {s['reason']}" for s in skipped)
    kinds: dict[str, list] = {}  # one line per kind of failure, with one example
    for s_ in skipped:
        kinds.setdefault(s_["kind"], []).append(s_)
    return f"{len(skipped)} budgets: " + "; ".join(
        f"{len(v)} {k} (e.g. {v[0]['budget']:.3g}: {v[0]['reason']})" for k, v in kinds.items())


def _parabola_bootstrap(x, y, windows, usable, Cv, af, R, rng, tick):
    """Resample the runs of each budget's window (each point of an IsoFLOP profile is one run), refit the parabolas,
    keep a replicate when at least two budgets still have an interior vertex; (samples, ci, replicates used)."""
    Nb = np.full((R, len(usable)), np.nan)
    for j, C in enumerate(usable):
        m = np.flatnonzero(windows[C])
        W = np.zeros((R, m.size))
        draws = rng.integers(0, m.size, size=(R, m.size))
        np.add.at(W, (np.arange(R)[:, None], draws), 1.0)
        coef = _parabolas(x[m], y[m], np.zeros(m.size), W)[0.0]
        xv = np.broadcast_to(vertex(x[m], y[m], coef[:, 0], coef[:, 1], coef[:, 2])[0], (R,))
        ok = (coef[:, 2] > 0) & (xv > x[m].min()) & (xv < x[m].max())
        Nb[ok, j] = np.exp(xv[ok])
        tick(R * (j + 1) // len(usable))  # the replicates are solved budget by budget
    good = np.isfinite(Nb).sum(axis=1) >= 2
    return allocation_bootstrap(((Cv[np.isfinite(r)], r[np.isfinite(r)]) for r in Nb[good]), af)


def fit_approach2(table, *, bootstrap=1000, seed=0, budget_tol=0.1, at_flops=None, progress=None,
                  vertex: str = "parabola", loss_noise: float | None = None) -> FitResult:
    check_vertex_options(vertex, loss_noise)
    require_loss_varies(table.loss, "approach2")
    budgets = group_budgets(table, budget_tol)
    x = np.log(table.N)
    y = table.loss
    uniq = np.unique(budgets)
    need(len(uniq) >= 2, "approach2: needs IsoFLOP groups at 2 or more budgets (a 'budget' column, or runs whose "
         f"compute clusters within {budget_tol:.0%}); found {len(uniq)}")
    rng = np.random.default_rng(seed)
    interp = vertex == "interpolated"
    noise = LOSS_NOISE if loss_noise is None else float(loss_noise)
    if interp:
        R = bootstrap if bootstrap else NOISE_REPLICATES
        vertices, skipped, reps, curves = _interpolated_vertices(table, budgets, uniq, noise, R, rng)
        windows, n_untested = {}, 0
    else:
        vertices, skipped, windows, n_untested, curves = _parabola_vertices(table, budgets, uniq)
    vertices.sort(key=lambda v: v["budget"])
    skipped.sort(key=lambda s_: s_["budget"])
    usable = [v["budget"] for v in vertices]
    if len(vertices) < 2:
        what = "an interior interpolated" if interp else "an interior IsoFLOP"
        raise ScalePlanError(f"approach2: only {len(vertices)} budget(s) have {what} minimum; need 2 or more "
                             f"({_skip_summary(skipped)})")
    Cv = np.array(usable)
    Nv = np.array([v["N_opt"] for v in vertices])
    wv = np.array([v["weight"] for v in vertices]) if interp else None
    fitd = _weighted_allocation(Cv, Nv, wv) if interp else allocation_fit(Cv, Nv)
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
    info = {"vertex": vertex, "vertices": vertices, "skipped_budgets": skipped, "budget_source": "budget column"
            if table.budget is not None else f"compute grouped within {budget_tol:.0%}"}
    if interp:
        info["loss_noise"] = noise
        info["loss_noise_source"] = ("given" if loss_noise is not None else
                                     f"assumed ({LOSS_NOISE:g} nats, Porian et al.'s RefinedWeb seed noise)")
        info["weights"] = "1/std(ln N*)^2 per budget (Porian et al. 2024)"
    if bootstrap and interp:
        # replicate i: the i-th interior noisy minimum of every budget, fitted with the same weights (their
        # fit_compute_optimal_power_laws 'bootstrap_weighted')
        n_rep = min(len(reps[C]) for C in usable)
        rows = [_weighted_allocation(Cv, np.exp(np.array([reps[C][i] for C in usable])), wv) for i in range(n_rep)]
        samples = {k: np.array([r[k] for r in rows]) for k in ("k_N", "a", "k_D", "b")}
        ci = {k: percentile_ci(v) for k, v in samples.items()}
        Nb = laws.allocation_value(af, samples["k_N"], samples["a"])
        Db = laws.allocation_value(af, samples["k_D"], samples["b"])
        ci.update(N_opt=percentile_ci(Nb), D_opt=percentile_ci(Db), tokens_per_param=percentile_ci(Db / Nb))
        ReplicateProgress(progress, "approach2", bootstrap)(bootstrap)
        info["bootstrap"] = {"replicates": int(bootstrap), "used": int(n_rep),
                             "resampled": f"losses + Gaussian noise (std {noise:g})", "seed": seed}
    elif bootstrap:
        tick = ReplicateProgress(progress, "approach2", bootstrap)
        samples, ci, used = _parabola_bootstrap(x, y, windows, usable, Cv, af, bootstrap, rng, tick)
        info["bootstrap"] = {"replicates": bootstrap, "used": used, "resampled": "runs within each budget's window",
                             "seed": seed}
    return FitResult(method="approach2", params=P, n_points=int(sum(v["n_points"] for v in vertices)),
                     objective=None, converged=not problems, ci95=ci, derived=derived,
                     warnings=tuple(problems + warnings), info=info,
                     samples=samples, plot_data={"N": table.N, "loss": table.loss, "budgets": budgets,
                                                 "curves": curves, "vertex": vertex})


def notes(result: FitResult) -> list[str]:
    """How many IsoFLOP vertices the allocation was fitted to, and how they were found."""
    info = result.info
    if "vertices" not in info:
        return []
    if info.get("vertex") == "interpolated":
        return [f"{len(info['vertices'])} interpolated IsoFLOP minima (Akima spline; Porian et al. 2024), weighted "
                f"by 1/std(ln N*)^2; loss noise {info['loss_noise']:g} ({info['loss_noise_source']})"]
    return [f"{len(info['vertices'])} IsoFLOP vertices used (parabolas on windows centred on each budget's lowest "
            "loss)"]


SPEC = MethodSpec(
    name="approach2", fit=fit_approach2, law_form="allocation", points="final",
    options=("budget_tol", "at_flops", "vertex", "loss_noise"), primary_rank=1, frontier=True, notes=notes,
    figure=FigureSpec("plot_isoflop", "Approach 2: IsoFLOP profiles, each budget's fitted curve (the parabola on its "
                      "window, or the spline with --vertex interpolated) and minimum; N_opt(C) power law."),
    description="Chinchilla IsoFLOP minima on final losses: parabolas, or --vertex interpolated")
