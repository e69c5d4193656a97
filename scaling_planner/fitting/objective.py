"""Robust objectives on log-loss residuals r = log L_hat - log L, summed over points (never averaged:
averaging shrinks the objective ~240x and makes optimisers stop early; docs/fitting.md §4.1).

* ``huber`` (default, delta = 1e-3): Hoffmann et al. 2022 App. D.2; Besiroglu et al. 2024.
* ``mse``: 0.5·r².
* ``asymmetric``: Huber with over-predictions (r > 0) weighted ``asymmetry`` times (default 10), so the law
  follows the lower envelope of the points (best achievable loss), as OLMo-core's overestimate penalty.
"""

from __future__ import annotations

import numpy as np

LOSSES = ("huber", "mse", "asymmetric")


def rho_psi(r: np.ndarray, loss: str = "huber", delta: float = 1e-3, asymmetry: float = 10.0,
            derivative: bool = True):
    """Return (rho(r), d rho/d r) elementwise (the derivative None when ``derivative`` is False)."""
    if loss == "mse":
        return 0.5 * r * r, (r if derivative else None)
    a = np.abs(r)
    small = a <= delta
    rho = np.where(small, 0.5 * r * r, delta * (a - 0.5 * delta))
    psi = np.where(small, r, delta * np.sign(r)) if derivative else None
    if loss == "asymmetric":
        w = np.where(r > 0, asymmetry, 1.0)
        return rho * w, (psi * w if derivative else None)
    if loss != "huber":
        raise ValueError(f"unknown loss {loss!r}")
    return rho, psi


def _finite(f, g):
    """Rows with a non-finite objective or gradient get f = inf and g = 0 (the line search then backs off)."""
    bad = ~np.isfinite(f) | ~np.isfinite(g).all(axis=1)
    f[bad] = np.inf
    g[bad] = 0.0
    return f, g


# (rows x points) elements per temporary: 48 KB. Measured on a 2-core machine (benchmarks/bench_fit.py), ns per
# point and start of chinchilla_fg at 240 / 1k / 100k points: 6,000 -> 19 / 18 / 17; 15,000 -> 45 / 42 / 91 (the ~10
# live temporaries then no longer stay in cache, and blocks over ~128 KB are mmap'ed and page-faulted on every call).
BLOCK_ELEMENTS = 6_000


def _block_shape(n: int, block_elements: int = BLOCK_ELEMENTS) -> tuple[int, int]:
    """(rows, points) of one block: whole rows while a row fits the budget, else one row cut into point chunks, so
    each (rows x points) temporary stays under ``block_elements`` whatever the number of points and the cost per point
    stays flat (over ~128 KB glibc mmaps each temporary and page-faults it on every call)."""
    n = max(int(n), 1)
    if n <= block_elements:
        return max(1, block_elements // n), n
    return 1, block_elements


def _weights_block(weights, rows, rs: slice, ps: slice):
    """The (rows x points) block of ``weights``: None, (n,), (R, n) or a :class:`~.common.RunWeights`; ``rows`` maps
    the working rows to the problems' rows (None: the identity)."""
    if weights is None:
        return None
    if weights.ndim == 1:
        return weights[ps]
    r = rs if rows is None else np.asarray(rows)[rs]
    return weights[r, ps]


def _blocked(one, n: int, weights, block: tuple[int, int]):
    """fg(theta, rows) that sums ``one(theta_block, weights_block, point_slice) -> (f, g)`` over blocks of rows and
    chunks of points (:func:`_block_shape`), then marks non-finite rows (:func:`_finite`)."""
    rb, pc = block

    def fg(theta, rows):
        k = theta.shape[0]
        if k <= rb and pc >= n:
            f, g = one(theta, _weights_block(weights, rows, slice(0, k), slice(0, n)), slice(0, n))
            return _finite(f, g)
        f = np.zeros(k)
        g = np.zeros_like(theta, dtype=float)
        for i in range(0, k, rb):
            rs = slice(i, min(i + rb, k))
            for j in range(0, n, pc):
                ps = slice(j, min(j + pc, n))
                fi, gi = one(theta[rs], _weights_block(weights, rows, rs, ps), ps)
                f[rs] += fi
                g[rs] += gi
        return _finite(f, g)

    return fg


def make_fg(model, data, lnL, *, loss="huber", delta=1e-3, asymmetry=10.0, weights=None):
    """Objective and gradient for a log-space model.

    ``model(theta (k,p), data) -> (pred (k,n), jac (k,n,p))`` predicts log L. ``weights`` is None, (n,) or (R, n) with
    one row per problem (bootstrap resampling counts); rows are picked by the ``rows`` argument of ``fg``.
    """

    n = len(lnL)

    def one(theta, w, ps):
        pred, jac = model(theta, tuple(d[..., ps] for d in data))
        r = pred - lnL[ps]
        rho, psi = rho_psi(r, loss, delta, asymmetry)
        if w is not None:
            rho = rho * w
            psi = psi * w
        return rho.sum(axis=1), np.einsum("kn,knp->kp", psi, jac)

    return _blocked(one, n, weights, _block_shape(n))


def offset_power_model(theta, data):
    """log L_hat = LSE(e, k - alpha·ln X): L = E + A·X^-alpha with E = e^e, A = e^k (X_c = A^(1/alpha)); theta = (e, k, alpha)."""
    (lnX,) = data
    e, k, al = (theta[:, i:i + 1] for i in range(3))
    t1 = np.broadcast_to(e, (theta.shape[0], lnX.shape[-1]))
    t2 = k - al * lnX
    mx = np.maximum(t1, t2)
    e1, e2 = np.exp(t1 - mx), np.exp(t2 - mx)
    s = e1 + e2
    pred = mx + np.log(s)
    p1, p2 = e1 / s, e2 / s
    return pred, np.stack([p1, p2, -p2 * lnX], axis=-1)


def chinchilla_fg(lnN, lnD, lnL, *, loss="huber", delta=1e-3, asymmetry=10.0, weights=None, block=None,
                  tied: bool = False, gradient: bool = True):
    """Fused, cache-blocked objective + gradient of the Approach-3 model
    log L_hat = LSE(a - alpha·ln N, b - beta·ln D, e), theta = (a, b, e, alpha, beta); A = e^a, B = e^b, E = e^e.
    ``tied``: one exponent for N and D (Gadre et al. 2024), theta = (a, b, e, alpha) and beta = alpha
    (docs/fitting.md §3.1). Several times faster than unblocked arrays: the (starts x points) temporaries stay in
    cache (:data:`BLOCK_ELEMENTS`); ``block`` = (rows, points) per block overrides :func:`_block_shape`.
    ``gradient=False``: the objective alone (the gradient returned is zeros), about twice as fast, for screens."""
    lnN, lnD, lnL = (np.asarray(v, dtype=float) for v in (lnN, lnD, lnL))
    n = len(lnL)

    def one(th, w, ps):
        a, b, e, al = th[:, 0], th[:, 1], th[:, 2], th[:, 3]
        be = al if tied else th[:, 4]
        xN, xD = lnN[ps], lnD[ps]
        u1 = a[:, None] - al[:, None] * xN
        np.clip(u1, -700, 700, out=u1)
        np.exp(u1, out=u1)
        u2 = b[:, None] - be[:, None] * xD
        np.clip(u2, -700, 700, out=u2)
        np.exp(u2, out=u2)
        E = np.exp(np.clip(e, -700, 700))
        s = u1 + u2
        s += E[:, None]
        r = np.log(s)
        r -= lnL[ps]
        rho, psi = rho_psi(r, loss, delta, asymmetry, derivative=gradient)
        if w is not None:
            rho *= w
        f = rho.sum(axis=1)
        if not gradient:
            return f, np.zeros_like(th)
        if w is not None:
            psi *= w
        q = psi / s
        w1 = q * u1
        w2 = q * u2
        g = np.empty_like(th)
        g[:, 0] = w1.sum(axis=1)
        g[:, 1] = w2.sum(axis=1)
        g[:, 2] = q.sum(axis=1) * E
        g[:, 3] = -(w1 @ xN)
        if tied:
            g[:, 3] -= w2 @ xD
        else:
            g[:, 4] = -(w2 @ xD)
        return f, g

    return _blocked(one, n, weights, _block_shape(n) if block is None else block)


def kaplan_joint_fg(lnN, lnD, lnL, *, loss="huber", delta=1e-3, asymmetry=10.0, weights=None):
    """Fused objective + gradient of the Kaplan joint model (log L_hat = alpha_D·LSE(r·(u - ln N), v - ln D),
    r = alpha_N/alpha_D, theta = (u = ln N_c, v = ln D_c, alpha_N, alpha_D))."""
    lnN, lnD, lnL_all = (np.asarray(v, dtype=float) for v in (lnN, lnD, lnL))
    n = len(lnL_all)
    lnN_all, lnD_all = lnN, lnD

    def one(th, w, ps):
        lnN, lnD, lnL = lnN_all[ps], lnD_all[ps], lnL_all[ps]
        u, v, aN, aD = (th[:, i:i + 1] for i in range(4))
        aD_safe = np.where(np.abs(aD) < 1e-12, 1e-12, aD)
        r = aN / aD_safe
        x = u - lnN
        s1 = r * x
        s2 = v - lnD
        mx = np.maximum(s1, s2)
        e1 = np.exp(s1 - mx)
        e2 = np.exp(s2 - mx)
        s = e1 + e2
        S = mx + np.log(s)
        p1 = e1 / s
        res = aD * S - lnL
        rho, psi = rho_psi(res, loss, delta, asymmetry)
        if w is not None:
            rho *= w
            psi *= w
        f = rho.sum(axis=1)
        q1 = psi * p1
        g = np.empty_like(th)
        g[:, 0] = q1.sum(axis=1) * th[:, 2]
        g[:, 1] = (psi * (1 - p1)).sum(axis=1) * th[:, 3]
        g[:, 2] = (q1 * x).sum(axis=1)
        g[:, 3] = (psi * S).sum(axis=1) - (q1 * x).sum(axis=1) * r[:, 0]
        return f, g

    return _blocked(one, n, weights, _block_shape(n))
