"""Parallel layouts (docs/planning.md §4.1-4.2): what a layout is, the small generators that enumerate candidates
(Calculon-style: each axis its own generator, its rule in one place), the memory filter, the ranking, and why an
alternative lost.

Each :class:`Layout` keeps the :class:`~scaling_planner.memory.MemoryEstimate` it was checked with (``memory``, not
in ``to_dict``), so reports and the plan never estimate a layout's memory again; :meth:`Layout.memory_config` is the
one place a MemoryConfig is built from a layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import ScalePlanError
from ..hardware import GPU
from ..memory import MemoryConfig, estimate_memory
from ..model import ModelShape
from ..units import GIB
from . import defaults, timing

if TYPE_CHECKING:
    from ..memory import MemoryEstimate


@dataclass(frozen=True)
class Layout:
    """One parallel layout of ``gpus`` GPUs: tp·pp·dp = gpus; global batch = grad_accum·dp·micro_batch sequences.
    ``memory_gib`` is the device peak per GPU (GiB), ``efficiency`` the relative throughput (1 = ideal) and
    ``penalties`` its terms (fractions of the ideal time; docs/planning.md §4.3)."""

    gpus: int
    dp: int
    tp: int
    pp: int
    zero_stage: int
    micro_batch: int
    grad_accum: int
    global_batch: int
    recompute: str
    sp: bool
    memory_gib: float = 0.0
    efficiency: float = 1.0
    penalties: dict = field(default_factory=dict)
    memory: MemoryEstimate | None = field(default=None, compare=False, repr=False)

    def memory_config(self, framework: str, seq_len: int) -> MemoryConfig:
        """The memory model's configuration of this layout under ``framework``'s profile at ``seq_len`` tokens."""
        return MemoryConfig(framework=framework, gpus=self.gpus, tp=self.tp, pp=self.pp, dp=self.dp,
                            zero=self.zero_stage, sp=self.sp, seq_len=seq_len, micro_batch=self.micro_batch,
                            grad_accum=self.grad_accum, recompute=self.recompute)

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "dp": self.dp, "tp": self.tp, "pp": self.pp, "zero_stage": self.zero_stage,
                "micro_batch": self.micro_batch, "grad_accum": self.grad_accum, "global_batch": self.global_batch,
                "recompute": self.recompute,
                "sequence_parallel": self.sp, "memory_per_gpu_gib": round(self.memory_gib, 2),
                "relative_throughput": round(self.efficiency, 4),
                "penalties": {k: round(v, 4) for k, v in self.penalties.items()}}


# ---- candidate generators (docs/planning.md §4.1) ---------------------------------------------------------------
def tp_degrees(shape: ModelShape, gpus: int, gpus_per_node: int) -> Iterator[int]:
    """TP t in {1, 2, 4, 8} with t <= min(GPUs per node, GPUs), t dividing the heads and dividing (or a multiple of)
    the KV heads."""
    for t in defaults.TP_DEGREES:
        if t > min(gpus_per_node, gpus) or shape.n_heads % t or (shape.n_kv_heads % t and t % shape.n_kv_heads):
            continue
        yield t


def pp_degrees(shape: ModelShape, gpus: int, tp: int) -> Iterator[int]:
    """PP p: divisors of the layer count up to 64 with t·p dividing the GPUs."""
    for p in range(1, min(shape.n_layers, defaults.MAX_PP) + 1):
        if shape.n_layers % p == 0 and gpus % (tp * p) == 0:
            yield p


def zero_stages(pp: int, dp: int) -> Iterator[int]:
    """ZeRO stage 0-3; stages 2 and 3 only without PP (Megatron's distributed optimizer and DeepSpeed's pipeline
    engine shard only the optimizer); no data parallelism -> stage 0 only."""
    for z in (0, 1, 2, 3):
        if (pp > 1 and z > 1) or (dp == 1 and z > 0):
            continue
        yield z


def batch_splits(global_batch: int, dp: int, pp: int) -> Iterator[tuple[int, int, int]]:
    """(micro-batch b, gradient accumulation m, global batch m·d·b): m = max(1, round(target/(d·b)), p if p > 1) so
    a pipeline has at least p micro-batches, kept when m·d·b is within [1/2, 2] x the target."""
    for mb in defaults.MICRO_BATCHES:
        m = max(1, round(global_batch / (dp * mb)), pp if pp > 1 else 1)
        gbs = m * dp * mb
        if global_batch / defaults.BATCH_TOLERANCE <= gbs <= global_batch * defaults.BATCH_TOLERANCE:
            yield mb, m, gbs


def candidates(shape: ModelShape, gpus: int, global_batch: int, gpus_per_node: int) -> Iterator[Layout]:
    """Every layout of the search space, unscored and unchecked: TP x PP x ZeRO x micro-batch x recompute, DP =
    GPUs/(t·p), sequence parallelism on whenever t > 1."""
    for t in tp_degrees(shape, gpus, gpus_per_node):
        for p in pp_degrees(shape, gpus, t):
            d = gpus // (t * p)
            for z in zero_stages(p, d):
                for mb, m, gbs in batch_splits(global_batch, d, p):
                    for rc in defaults.RECOMPUTE_MODES:
                        yield Layout(gpus=gpus, dp=d, tp=t, pp=p, zero_stage=z, micro_batch=mb, grad_accum=m,
                                     global_batch=gbs, recompute=rc, sp=t > 1)


# ---- memory filter (docs/planning.md §4.2) ----------------------------------------------------------------------
def fits(est: MemoryEstimate | None, gpu: GPU, headroom: float) -> bool:
    """A layout fits when the memory model could cost it and its device peak is at most (1 − headroom) of the
    GPU's memory."""
    return est is not None and est.device / GIB <= gpu.memory_gib * (1 - headroom)


def _estimate(shape: ModelShape, lay: Layout, gpu: GPU, framework: str, seq: int):
    try:
        return estimate_memory(shape, lay.memory_config(framework, seq), gpu, suggest=False)
    except ScalePlanError:
        return None  # a layout the memory model refuses (e.g. an impossible split) does not fit


# ---- ranking ----------------------------------------------------------------------------------------------------
def rank(layouts: list[Layout], max_results: int) -> list[Layout]:
    """Best predicted throughput first; ties: less model parallelism (t·p), then less memory. Keeps one layout per
    (TP, PP, ZeRO, recompute), so alternatives differ in more than the micro-batch."""
    ordered = sorted(layouts, key=lambda L: (-round(L.efficiency, 4), L.tp * L.pp, L.memory_gib))
    seen, uniq = set(), []
    for L in ordered:
        k = (L.tp, L.pp, L.zero_stage, L.recompute)
        if k in seen:
            continue
        seen.add(k)
        uniq.append(L)
    return uniq[:max_results]


def search_layouts(shape: ModelShape, gpu: GPU, gpus: int, global_batch: int, seq: int, mfu: float,
                   gpus_per_node: int, framework: str = "megatron", headroom: float = defaults.MEMORY_HEADROOM,
                   max_results: int = 4) -> list[Layout]:
    """The layouts of ``gpus`` GPUs that fit in memory, best first (at most ``max_results``), each with its memory
    estimate and throughput score."""
    scored = []
    for lay in candidates(shape, gpus, global_batch, gpus_per_node):
        est = _estimate(shape, lay, gpu, framework, seq)
        if not fits(est, gpu, headroom):
            continue
        eff, pen = timing.throughput(shape, gpu, dict(tp=lay.tp, pp=lay.pp, dp=lay.dp, zero_stage=lay.zero_stage,
                                                      micro_batch=lay.micro_batch, grad_accum=lay.grad_accum,
                                                      recompute=lay.recompute), seq, mfu, gpus_per_node)
        scored.append(replace(lay, memory_gib=est.device / GIB, efficiency=eff, penalties=pen, memory=est))
    return rank(scored, max_results)


def why_lost(best: Layout, alt: Layout) -> str:
    """Why ``alt`` ranks below ``best``, in words: its throughput difference and the penalties that are larger."""
    rel = alt.efficiency / best.efficiency - 1
    reasons = []
    for k, label in (("pp_bubble", "pipeline bubble"), ("tp_comm", "TP communication"),
                     ("dp_comm_exposed", "exposed DP communication"), ("recompute", "recompute"),
                     ("pp_comm", "PP communication")):
        if alt.penalties.get(k, 0) > best.penalties.get(k, 0) + 1e-3:
            reasons.append(f"{label} {alt.penalties[k]:.0%}")
    if abs(rel) < 5e-4:
        extra = alt.memory_gib - best.memory_gib
        return (f"same throughput, {extra:+.1f} GiB per GPU" if abs(extra) > 0.05 else "equivalent") + \
            (f"; more model parallelism (tp·pp = {alt.tp * alt.pp})" if alt.tp * alt.pp > best.tp * best.pp else "")
    txt = f"{rel:+.1%} throughput"
    return txt + (" (" + ", ".join(reasons) + ")" if reasons else "")
