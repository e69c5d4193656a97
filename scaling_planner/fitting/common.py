"""Shared pieces of the fitters: run-level bootstrap weights and percentile intervals, log-log regression, the
power-law allocation fit of Approaches 1 and 2, guards."""

from __future__ import annotations

import numpy as np

from ..errors import ScalePlanError


def run_bootstrap_weights(run_ids: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_points) weights: each replicate resamples RUNS with replacement; a point's weight is how many times
    its run was drawn (checkpoints of one run are correlated and move together; docs/fitting.md §3.2)."""
    return run_bootstrap_counts(run_ids, n_boot, rng).dense()


class RunWeights:
    """The weights of :func:`run_bootstrap_weights` without the (n_boot, n_points) matrix of floats: the draw counts
    per replicate and run (the smallest unsigned integer type that holds them) and each point's run. Indexing
    ``w[rows, points]`` gathers that block as floats, so large tables cost n_boot x n_runs small integers."""

    ndim = 2

    def __init__(self, counts: np.ndarray, inv: np.ndarray):
        self.counts, self.inv = counts, inv

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape[0], self.inv.size

    def __getitem__(self, key):
        rows, points = key if isinstance(key, tuple) else (key, slice(None))
        return self.counts[rows][..., self.inv[points]].astype(float)

    def dense(self) -> np.ndarray:
        return self[:, :]


def run_bootstrap_counts(run_ids: np.ndarray, n_boot: int, rng: np.random.Generator) -> RunWeights:
    """:func:`run_bootstrap_weights` as :class:`RunWeights` (the same draws from ``rng``, made a block of replicates
    at a time)."""
    uniq, inv = np.unique(run_ids, return_inverse=True)
    u = uniq.size
    counts = np.zeros((n_boot, u), dtype=np.uint8 if u <= 0xFF else np.uint16)  # a count is at most u (or < 2^16)
    step = max(1, 1_000_000 // max(u, 1))
    for i in range(0, n_boot, step):
        k = min(step, n_boot - i)
        draws = rng.integers(0, u, size=(k, u))  # the stream of one (n_boot, u) call, in row blocks
        c = np.bincount((draws + (np.arange(k) * u)[:, None]).ravel(), minlength=k * u).reshape(k, u)
        if c.max() > np.iinfo(counts.dtype).max:
            counts = counts.astype(np.uint32)
        counts[i:i + k] = c
    return RunWeights(counts, inv)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> list[float]:
    """[low, high] percentile interval of the bootstrap ``samples`` (non-finite replicates left out; NaNs when fewer
    than two remain). The one place every method's 95% intervals come from (docs/fitting.md §3.2)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(s, [50 * (1 - level), 100 - 50 * (1 - level)])
    return [float(lo), float(hi)]


def loglog_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """Least squares of ln y = c + k·ln x (optionally weighted). Returns (k, c, r2, rmse) in log space."""
    lx, ly = np.log(x), np.log(y)
    if w is None:
        w = np.ones_like(lx)
    W = w.sum()
    mx, my = (w * lx).sum() / W, (w * ly).sum() / W
    sxx = (w * (lx - mx) ** 2).sum()
    if sxx <= 0:
        raise ScalePlanError("all points have the same x, so no power law can be fitted")
    k = (w * (lx - mx) * (ly - my)).sum() / sxx
    c = my - k * mx
    res = ly - (c + k * lx)
    ss_tot = (w * (ly - my) ** 2).sum()
    r2 = 1 - (w * res**2).sum() / ss_tot if ss_tot > 0 else 1.0
    rmse = float(np.sqrt((w * res**2).sum() / W))
    return float(k), float(c), float(r2), rmse


def loglog_fit_batch(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised weighted log-log fits, one per row of W (R, n). Returns (k, c) arrays."""
    lx, ly = np.log(x), np.log(y)
    S = W.sum(axis=1)
    mx = (W @ lx) / S
    my = (W @ ly) / S
    dx = lx[None, :] - mx[:, None]
    sxx = (W * dx**2).sum(axis=1)
    sxy = (W * dx * (ly[None, :] - my[:, None])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = sxy / sxx
    return k, my - k * mx


def need(cond: bool, msg: str) -> None:
    if not cond:
        raise ScalePlanError(msg)


FLAT_REL = 1e-6  # losses that all lie within this relative spread carry no scaling information


def flat_loss_message(loss: np.ndarray) -> str | None:
    """Why no law can be fitted when every loss is (numerically) the same; None when the loss varies (or when there
    are too few points to say: the methods' own minimum-size checks speak then)."""
    lnL = np.log(np.asarray(loss, dtype=float))
    if lnL.size < 3:
        return None
    spread = float(np.ptp(lnL))
    if spread > FLAT_REL:
        return None
    return (f"loss is flat across the data: every loss is {float(np.exp(lnL.mean())):.6g} (relative spread "
            f"{spread:.2g}), so there is nothing to fit a scaling law to")


def require_loss_varies(loss: np.ndarray, method: str) -> None:
    """ScalePlanError when every loss is (numerically) the same: no law can be fitted to a flat loss."""
    msg = flat_loss_message(loss)
    need(msg is None, f"{method}: {msg}")


def is_real_finite(v) -> bool:
    """True for a finite real number (False for NaN, inf, complex, None)."""
    if v is None or isinstance(v, complex) or np.iscomplexobj(v):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False


def nonfinite_problems(values: dict, what: str, explain: dict | None = None) -> list[str]:
    """One warning per key whose value is not a finite real number."""
    out = []
    for k, v in values.items():
        if isinstance(v, (int, float, complex, np.number)) and not is_real_finite(v):
            why = (explain or {}).get(k, "")
            out.append(f"{what} {k} is not a finite number ({v})" + (f": {why}" if why else ""))
    return out


def allocation_problems(P: dict, derived: dict) -> list[str]:
    """Why an allocation fit (N_opt = k_N·C^a, D_opt = k_D·C^b) is not a usable answer; empty when it is."""
    a = P.get("a")
    out = []
    if is_real_finite(a) and a <= 0:
        out.append(f"the compute-optimal model size does not grow with compute: the fitted exponent a (N_opt ∝ C^a) "
                   f"is {a:.3g}")
    elif is_real_finite(a) and a >= 1:
        out.append(f"the compute-optimal token count does not grow with compute: the fitted exponent b "
                   f"(D_opt ∝ C^b) is {P.get('b', 1 - a):.3g}")
    out += nonfinite_problems(P, "the fitted")
    out += nonfinite_problems({k: v for k, v in derived.items() if k in ("N_opt", "D_opt", "tokens_per_param")},
                              "the derived")
    return out


class ReplicateProgress:
    """Throttled progress of bootstrap replicates: calls ``callback(method, done, total)`` at most ``max_updates``
    times, always including ``done == total`` (``fit`` itself reports ``done == 0`` as each method starts).
    ``callback`` None: does nothing."""

    def __init__(self, callback, method: str, total: int, max_updates: int = 50):
        self.cb, self.method, self.total = callback, method, int(total)
        self.step = max(1, -(-self.total // max_updates))
        self.last = 0

    def __call__(self, done: int) -> None:
        if self.cb is None or self.total <= 0:
            return
        done = min(int(done), self.total)
        if done >= self.last + self.step or (done == self.total and self.last < self.total):
            self.last = done
            self.cb(self.method, done, self.total)


def allocation_fit(C: np.ndarray, N: np.ndarray) -> dict[str, float]:
    """N_opt = k_N·C^a and D_opt = k_D·C^b (D = C/(6N)) by least squares in log-log space."""
    a, ca, r2a, _ = loglog_fit(C, N)
    b, cb, r2b, _ = loglog_fit(C, C / (6 * N))
    return {"k_N": float(np.exp(ca)), "a": a, "k_D": float(np.exp(cb)), "b": b, "r2_N": r2a, "r2_D": r2b}


def allocation_bootstrap(replicates, at_flops: float):
    """Samples and 95% intervals of k_N, a, k_D, b and of N_opt, D_opt, tokens/param at ``at_flops`` from an iterable
    of (C, N) replicate arrays (replicates with fewer than two distinct C or N are skipped)."""
    from ..laws import allocation_value

    rows = [allocation_fit(C, N) for C, N in replicates if len(np.unique(C)) >= 2 and len(np.unique(N)) >= 2]
    samples = {k: np.array([r[k] for r in rows]) for k in ("k_N", "a", "k_D", "b")}
    ci = {k: percentile_ci(v) for k, v in samples.items()}
    Nb = allocation_value(at_flops, samples["k_N"], samples["a"])
    Db = allocation_value(at_flops, samples["k_D"], samples["b"])
    ci.update(N_opt=percentile_ci(Nb), D_opt=percentile_ci(Db), tokens_per_param=percentile_ci(Db / Nb))
    return samples, ci, len(rows)
