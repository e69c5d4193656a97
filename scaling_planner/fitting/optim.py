"""A batched L-BFGS: many independent small problems (starts, bootstrap replicates) minimised at once with numpy.

Every row of ``X`` is one problem. ``fg(X_sub, rows)`` returns the objective ``f`` (k,) and gradient ``g`` (k, p)
for the given rows, so a problem may carry its own data weights (bootstrap). Stopping follows scipy's L-BFGS-B:
relative decrease ``(f_k - f_k+1)/max(|f_k|, |f_k+1|, 1) <= ftol`` or ``max|g| <= gtol``. Tolerances default to the
tight values that Approach 3 needs (docs/fitting.md §3.1: scipy's defaults stop 10-12 iterations in, at the wrong point).

Implementation: the curvature pairs of all rows share one ring of ``m`` slots (a row that skips an update stores a
zero pair, which the two-loop recursion ignores), and finished rows are compacted away, so every step works on
contiguous arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchResult:
    x: np.ndarray  # (B, p)
    f: np.ndarray  # (B,)
    grad_norm: np.ndarray  # (B,) max |g|
    nit: np.ndarray  # (B,) iterations
    converged: np.ndarray  # (B,) bool
    status: np.ndarray  # (B,) 'gtol' | 'ftol' | 'linesearch' | 'maxiter' | 'nonfinite'


def batched_lbfgs(fg, X0, *, maxiter: int = 2000, ftol: float = 1e-15, gtol: float = 1e-12, m: int = 10,
                  max_ls: int = 50, progress=None) -> BatchResult:
    """Minimise every row of ``X0``; ``progress(n_finished)`` (optional) is called whenever rows finish."""
    X_out = np.array(X0, dtype=float, copy=True)
    B, p = X_out.shape
    f_out = np.full(B, np.inf)
    g_out = np.zeros((B, p))
    nit_out = np.zeros(B, dtype=int)
    status = np.full(B, "maxiter", dtype=object)

    rows = np.arange(B)  # original index of each working row
    X = X_out.copy()
    f, g = fg(X, rows)
    f = np.where(np.isfinite(f), f, np.inf)
    f_out[:], g_out[:] = f, g
    S = np.zeros((m, B, p))
    Y = np.zeros((m, B, p))
    RHO = np.zeros((m, B))
    gamma = np.zeros(B)  # s·y / y·y of each row's newest pair (0: none yet)
    nit = np.zeros(B, dtype=int)
    done = ~np.isfinite(f) | (np.abs(g).max(axis=1) <= gtol)
    status[~np.isfinite(f)] = "nonfinite"
    status[np.isfinite(f) & done] = "gtol"
    slot = 0

    n_finished = 0

    def retire(mask):
        nonlocal rows, X, f, g, S, Y, RHO, gamma, nit, n_finished
        idx = rows[mask]
        if idx.size:
            n_finished += idx.size
            if progress is not None:
                progress(n_finished)
        X_out[idx], f_out[idx], g_out[idx], nit_out[idx] = X[mask], f[mask], g[mask], nit[mask]
        keep = ~mask
        rows, X, f, g, nit, gamma = rows[keep], X[keep], f[keep], g[keep], nit[keep], gamma[keep]
        S, Y, RHO = S[:, keep], Y[:, keep], RHO[:, keep]

    retire(done)
    for _ in range(maxiter):
        k = rows.size
        if k == 0:
            break
        # two-loop recursion over the shared ring, newest pair first
        q = g.copy()
        alphas = np.empty((m, k))
        for j in range(m):
            sl = (slot - 1 - j) % m
            a = RHO[sl] * np.einsum("ij,ij->i", S[sl], q)
            alphas[j] = a
            q -= a[:, None] * Y[sl]
        gam = np.where(gamma > 0, gamma, np.minimum(1.0, 1.0 / np.maximum(np.abs(g).sum(axis=1), 1e-300)))
        z = gam[:, None] * q
        for j in reversed(range(m)):
            sl = (slot - 1 - j) % m
            b = RHO[sl] * np.einsum("ij,ij->i", Y[sl], z)
            z += (alphas[j] - b)[:, None] * S[sl]
        d = -z
        slope = np.einsum("ij,ij->i", d, g)
        bad = ~(slope < 0) | ~np.isfinite(slope)
        if bad.any():  # not a descent direction: forget the history, steepest descent
            d[bad] = -g[bad] / np.maximum(np.abs(g[bad]).sum(axis=1, keepdims=True), 1e-300)
            slope[bad] = np.einsum("ij,ij->i", d[bad], g[bad])
            S[:, bad] = 0.0
            Y[:, bad] = 0.0
            RHO[:, bad] = 0.0
            gamma[bad] = 0.0
        # backtracking Armijo line search
        t = np.ones(k)
        f_new = np.full(k, np.inf)
        g_new = np.zeros_like(g)
        x_new = X.copy()
        todo = np.arange(k)
        for _ls in range(max_ls):
            xt = X[todo] + t[todo, None] * d[todo]
            ft, gt = fg(xt, rows[todo])
            ok = np.isfinite(ft) & (ft <= f[todo] + 1e-4 * t[todo] * slope[todo])
            acc = todo[ok]
            f_new[acc], g_new[acc], x_new[acc] = ft[ok], gt[ok], xt[ok]
            todo = todo[~ok]
            if todo.size == 0:
                break
            t[todo] *= 0.5
        failed = np.zeros(k, dtype=bool)
        failed[todo] = True
        moved = ~failed
        s_new = np.where(moved[:, None], x_new - X, 0.0)
        y_new = np.where(moved[:, None], g_new - g, 0.0)
        sy = np.einsum("ij,ij->i", s_new, y_new)
        upd = moved & (sy > 1e-300)
        S[slot] = np.where(upd[:, None], s_new, 0.0)
        Y[slot] = np.where(upd[:, None], y_new, 0.0)
        RHO[slot] = np.where(upd, 1.0 / np.where(upd, sy, 1.0), 0.0)
        yy = np.einsum("ij,ij->i", y_new, y_new)
        gamma = np.where(upd, sy / np.where(yy > 0, yy, 1.0), gamma)
        slot = (slot + 1) % m
        f_old = f.copy()
        X = np.where(moved[:, None], x_new, X)
        f = np.where(moved, f_new, f)
        g = np.where(moved[:, None], g_new, g)
        nit += 1
        rel = (f_old - f) / np.maximum(np.maximum(np.abs(f_old), np.abs(f)), 1.0)
        gmax = np.abs(g).max(axis=1)
        done_g = moved & (gmax <= gtol)
        done_f = moved & (rel <= ftol) & ~done_g
        status[rows[done_g]] = "gtol"
        status[rows[done_f]] = "ftol"
        status[rows[failed]] = "linesearch"
        retire(done_g | done_f | failed)
    if rows.size:
        retire(np.ones(rows.size, dtype=bool))
    gn = np.abs(g_out).max(axis=1)
    converged = (status == "gtol") | (status == "ftol") | ((status == "linesearch") & (gn < 1e-6))
    return BatchResult(x=X_out, f=f_out, grad_norm=gn, nit=nit_out, converged=converged, status=status)
