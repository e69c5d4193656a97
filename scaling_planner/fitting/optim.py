"""A batched L-BFGS: many independent small problems (starts, bootstrap replicates) minimised at once with numpy.

Every row of ``X`` is one problem. ``fg(X_sub, rows)`` returns the objective ``f`` (k,) and gradient ``g`` (k, p)
for the given rows, so a problem may carry its own data weights (bootstrap). Stopping follows scipy's L-BFGS-B:
relative decrease ``(f_k - f_k+1)/max(|f_k|, |f_k+1|, 1) <= ftol`` or ``max|g| <= gtol``. Tolerances default to the
tight values that Approach 3 needs (fitting.md §3.1: scipy's defaults stop 10-12 iterations in, at the wrong point).
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
    status: np.ndarray  # (B,) 'gtol' | 'ftol' | 'linesearch' | 'maxiter'


def batched_lbfgs(fg, X0, *, maxiter: int = 2000, ftol: float = 1e-15, gtol: float = 1e-12, m: int = 10,
                  max_ls: int = 50) -> BatchResult:
    X = np.array(X0, dtype=float, copy=True)
    B, p = X.shape
    rows_all = np.arange(B)
    f, g = fg(X, rows_all)
    f = np.where(np.isfinite(f), f, np.inf)
    S = np.zeros((B, m, p))
    Y = np.zeros((B, m, p))
    RHO = np.zeros((B, m))
    pos = np.zeros(B, dtype=int)
    cnt = np.zeros(B, dtype=int)
    nit = np.zeros(B, dtype=int)
    status = np.full(B, "maxiter", dtype=object)
    active = np.isfinite(f) & (np.abs(g).max(axis=1) > gtol)
    status[~np.isfinite(f)] = "nonfinite"
    status[np.isfinite(f) & ~active] = "gtol"

    for _ in range(maxiter):
        r = np.flatnonzero(active)
        if r.size == 0:
            break
        gr = g[r]
        # two-loop recursion, vectorised over rows
        q = gr.copy()
        alphas = np.zeros((r.size, m))
        for j in range(m):
            idx = (pos[r] - 1 - j) % m
            valid = j < cnt[r]
            s, y, rho = S[r, idx], Y[r, idx], RHO[r, idx]
            a = np.where(valid, rho * np.einsum("ij,ij->i", s, q), 0.0)
            alphas[:, j] = a
            q -= a[:, None] * y
        newest = (pos[r] - 1) % m
        sy = np.einsum("ij,ij->i", S[r, newest], Y[r, newest])
        yy = np.einsum("ij,ij->i", Y[r, newest], Y[r, newest])
        gamma = np.where(cnt[r] > 0, sy / np.where(yy > 0, yy, 1.0), 1.0 / np.maximum(np.abs(gr).sum(axis=1), 1e-300))
        gamma = np.where(cnt[r] > 0, gamma, np.minimum(gamma, 1.0))
        z = gamma[:, None] * q
        for j in reversed(range(m)):
            idx = (pos[r] - 1 - j) % m
            valid = j < cnt[r]
            s, y, rho = S[r, idx], Y[r, idx], RHO[r, idx]
            b = rho * np.einsum("ij,ij->i", y, z)
            z += np.where(valid, alphas[:, j] - b, 0.0)[:, None] * s
        d = -z
        slope = np.einsum("ij,ij->i", d, gr)
        bad = ~(slope < 0) | ~np.isfinite(slope)
        if bad.any():  # not a descent direction: restart from steepest descent
            d[bad] = -gr[bad] / np.maximum(np.abs(gr[bad]).sum(axis=1, keepdims=True), 1e-300)
            slope[bad] = np.einsum("ij,ij->i", d[bad], gr[bad])
            cnt[r[bad]] = 0
        # backtracking Armijo line search, vectorised
        t = np.ones(r.size)
        f_new = np.full(r.size, np.inf)
        g_new = np.zeros_like(gr)
        x_new = X[r].copy()
        todo = np.arange(r.size)
        for _ls in range(max_ls):
            xt = X[r[todo]] + t[todo, None] * d[todo]
            ft, gt = fg(xt, r[todo])
            ok = np.isfinite(ft) & (ft <= f[r[todo]] + 1e-4 * t[todo] * slope[todo])
            acc = todo[ok]
            f_new[acc], g_new[acc], x_new[acc] = ft[ok], gt[ok], xt[ok]
            todo = todo[~ok]
            if todo.size == 0:
                break
            t[todo] *= 0.5
        failed = np.zeros(r.size, dtype=bool)
        failed[todo] = True
        moved = ~failed
        rm = r[moved]
        s_new = x_new[moved] - X[rm]
        y_new = g_new[moved] - g[rm]
        sy_new = np.einsum("ij,ij->i", s_new, y_new)
        upd = sy_new > 1e-300
        ru = rm[upd]
        S[ru, pos[ru]] = s_new[upd]
        Y[ru, pos[ru]] = y_new[upd]
        RHO[ru, pos[ru]] = 1.0 / sy_new[upd]
        pos[ru] = (pos[ru] + 1) % m
        cnt[ru] = np.minimum(cnt[ru] + 1, m)
        f_old = f[rm].copy()
        X[rm], f[rm], g[rm] = x_new[moved], f_new[moved], g_new[moved]
        nit[r] += 1
        rel = (f_old - f[rm]) / np.maximum(np.maximum(np.abs(f_old), np.abs(f[rm])), 1.0)
        gmax = np.abs(g[rm]).max(axis=1)
        done_g = gmax <= gtol
        done_f = rel <= ftol
        status[rm[done_g]] = "gtol"
        status[rm[done_f & ~done_g]] = "ftol"
        active[rm[done_g | done_f]] = False
        status[r[failed]] = "linesearch"
        active[r[failed]] = False
    gn = np.abs(g).max(axis=1)
    converged = (status == "gtol") | (status == "ftol") | ((status == "linesearch") & (gn < 1e-6))
    return BatchResult(x=X, f=f, grad_norm=gn, nit=nit, converged=converged, status=status)
