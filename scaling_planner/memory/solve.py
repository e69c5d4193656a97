"""What fits: the largest seq_len, micro_batch or lora_rank (the smallest gpus) whose estimate fits a GPU
(docs/memory.md §7.2).

A pure search over integers with :func:`estimate_memory` as the oracle and the one fit rule
(:func:`memory.fit.fits_gpu`, via ``MemoryEstimate.fits``): galloping (doubling from the smallest value until one does
not fit), then bisection between the last fitting and the first failing value, ~2·log2(answer) estimates. The device
peak is non-decreasing in seq_len, micro_batch and lora_rank and non-increasing in gpus; the search checks this on the
points it evaluates and raises if it ever sees the opposite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ScalePlanError
from ..model import ModelShape
from ..units import GIB
from .config import MemoryConfig
from .estimate import estimate_memory
from .fit import FIT_HEADROOM
from .result import MemoryEstimate

# variable -> (MemoryConfig field for training, field under inference, smallest value, largest value searched)
VARIABLES: dict[str, tuple[str, str, int, int]] = {
    "seq-len": ("seq_len", "context", 1, 1 << 24),  # up to 16M tokens
    "micro-batch": ("micro_batch", "batch", 1, 1 << 16),
    "lora-rank": ("lora_rank", "lora_rank", 1, 1 << 16),
    "gpus": ("gpus", "gpus", 1, 1 << 20),  # in steps of tp·pp; the smallest that fits
}


@dataclass(frozen=True)
class Solution:
    """The solved value with its estimate, and the next value (one more; one step fewer for gpus) with its estimate
    (None when the value is the end of the searched range)."""

    variable: str
    value: int
    estimate: MemoryEstimate
    next_value: int | None
    next_estimate: MemoryEstimate | None
    evaluations: int

    def to_dict(self) -> dict:
        return {"variable": self.variable, "value": self.value,
                "device_gib": round(self.estimate.device / GIB, 4), "next_value": self.next_value,
                "next_device_gib": None if self.next_estimate is None else round(self.next_estimate.device / GIB, 4),
                "usable_gib": round(self.estimate.usable_gib, 3), "fit_headroom": FIT_HEADROOM,
                "evaluations": self.evaluations}


def solve(shape: ModelShape, config: MemoryConfig, gpu, variable: str) -> Solution:
    """The largest ``variable`` (seq-len, micro-batch, lora-rank) — or the smallest gpus — for which
    ``estimate_memory(shape, config with that value, gpu)`` fits ``gpu``. Raises ScalePlanError (param ``solve``)
    when ``gpu`` is None, the variable does not apply, or nothing in the searched range fits."""
    if variable not in VARIABLES:
        raise ScalePlanError(f"solve must be one of {', '.join(VARIABLES)}, got {variable!r}", param="solve")
    if gpu is None:
        raise ScalePlanError(f"solve {variable} needs a GPU to fit: give gpu", param=("solve", "gpu"))
    c = (config or MemoryConfig()).resolved()
    train_field, inf_field, lo, hi = VARIABLES[variable]
    field = inf_field if c.inference else train_field
    if variable == "lora-rank" and c.method == "full":
        raise ScalePlanError("solve lora-rank needs method lora or qlora (a full fine-tune has no adapter rank)",
                             param=("solve", "method"))
    if variable == "lora-rank" and c.inference:
        raise ScalePlanError("solve lora-rank is for training; inference has no adapter rank",
                             param=("solve", "inference"))
    memo: dict[int, MemoryEstimate | None] = {}

    if variable == "gpus":
        step = c.tp * c.pp

        def at(k: int) -> MemoryEstimate | None:  # k steps of tp·pp GPUs; None: a layout the model refuses
            if k not in memo:
                try:
                    memo[k] = estimate_memory(shape, replace(c, gpus=k * step, dp=None), gpu, suggest=False)
                except ScalePlanError:
                    memo[k] = None
            return memo[k]

        def ok(k: int) -> bool:
            e = at(k)
            return e is not None and bool(e.fits)

        k = _first_true(ok, 1, hi // step)
        if k is None:
            e = at(hi // step)
            short = "" if e is None else f" (still {e.device / GIB:.1f} GiB each at {hi // step * step:,})"
            why = ("the weights are not sharded over data-parallel GPUs below ZeRO-3: use zero 3, more tp or pp, "
                   "or a GPU with more memory" if c.zero < 3 else
                   "activations, logits and buffers do not shrink with more data-parallel GPUs: use recompute full, "
                   "a shorter seq_len, more tp or pp, or a GPU with more memory")
            raise ScalePlanError(f"no number of GPUs up to {hi // step * step:,} fits {gpu.name}{short}: {why}",
                                 param=("zero", "recompute", "seq_len") if c.zero == 3 else "zero")
        _check_monotone(memo, increasing=False, variable=variable)
        nxt = k - 1 if k > 1 else None
        return Solution(variable, k * step, at(k), None if nxt is None else nxt * step,
                        None if nxt is None else at(nxt), len(memo))

    if c.inference and field == "context" and c.context is None:
        c = replace(c, context=c.seq_len)

    def at(v: int) -> MemoryEstimate:
        if v not in memo:
            memo[v] = estimate_memory(shape, replace(c, **{field: v}), gpu, suggest=False)
        return memo[v]

    if not at(lo).fits:
        e = at(lo)
        raise ScalePlanError(f"nothing fits: even {field} {lo} needs {e.device / GIB:.1f} GiB on {gpu.name}, more "
                             f"than its {e.usable_gib:.1f} GiB usable ({1 - FIT_HEADROOM:.0%} of "
                             f"{gpu.memory_gib:.1f} GiB); shrink the other settings first (zero, recompute, method, "
                             "more GPUs) or use a GPU with more memory", param=field)
    v = _last_true(lambda x: bool(at(x).fits), lo, hi)
    _check_monotone({k: e for k, e in memo.items()}, increasing=True, variable=variable)
    nxt = v + 1 if v < hi else None
    return Solution(variable, v, at(v), nxt, None if nxt is None else at(nxt), len(memo))


def _last_true(ok, lo: int, hi: int) -> int:
    """Largest x in [lo, hi] with ok(x), given ok(lo) and ok monotone (True then False): gallop, then bisect."""
    good, x = lo, lo
    while True:
        x = min(2 * x, hi)
        if not ok(x):
            bad = x
            break
        good = x
        if x == hi:
            return hi
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    return good


def _first_true(ok, lo: int, hi: int) -> int | None:
    """Smallest k in [lo, hi] with ok(k) (False then True), None if ok(hi) is False: the last k where ok is False,
    plus one (:func:`_last_true` on the negation)."""
    if ok(lo):
        return lo
    last_bad = _last_true(lambda k: not ok(k), lo, hi)
    return None if last_bad == hi else last_bad + 1


def _check_monotone(memo: dict, increasing: bool, variable: str) -> None:
    """The search assumes the device peak moves one way with the variable; raise if the evaluated points disagree."""
    pts = sorted((k, e.device) for k, e in memo.items() if e is not None)
    for (a, da), (b, db) in zip(pts, pts[1:]):
        if (db < da) if increasing else (db > da):
            raise ScalePlanError(f"solve {variable}: the estimate is not monotone ({da / GIB:.2f} GiB at {a}, "
                                 f"{db / GIB:.2f} GiB at {b}); the search's answer would not be reliable",
                                 param="solve")
