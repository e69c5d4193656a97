"""Parallel layouts (docs/planning.md §4.1-4.2): what a layout is, the small generators that enumerate candidates
(Calculon-style: each axis its own generator, its rule in one place), the memory filter, the ranking, and why an
alternative lost.

Each :class:`Layout` keeps the :class:`~scaling_planner.memory.MemoryEstimate` it was checked with (``memory``) and
the :class:`~.steptime.StepTime` it was scored with (``step``; neither in ``to_dict``), so reports and the plan never
estimate a layout's memory or time again; :meth:`Layout.memory_config` is the one place a MemoryConfig is built from
a layout, :func:`.timing.layout_step` the one place it is timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import ScalePlanError
from ..hardware import GPU
from ..memory import MemoryConfig, estimate_memory
from ..memory.fit import fits_gpu
from ..model import ModelShape
from ..units import GIB
from . import defaults, timing

if TYPE_CHECKING:
    from ..memory import MemoryEstimate
    from .steptime import StepTime


@dataclass(frozen=True)
class Layout:
    """One parallel layout of ``gpus`` GPUs: tp·pp·dp = gpus; global batch = grad_accum·dp·micro_batch sequences.
    ``memory_gib`` is the device peak per GPU (GiB), ``efficiency`` the predicted MFU of the step-time model (1 = the
    dense BF16 peak; JSON ``relative_throughput``) and ``penalties`` its step breakdown as fractions of the step
    (docs/planning.md §4.3)."""

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
    ep: int = 1  # expert parallelism: experts split over ep ranks of the DP group (MoE only)
    precision: str = "bf16"  # compute precision of the GEMMs: bf16, or fp8 (Transformer Engine; megatron)
    memory_gib: float = 0.0
    efficiency: float = 1.0
    penalties: dict = field(default_factory=dict)
    memory: MemoryEstimate | None = field(default=None, compare=False, repr=False)
    step: StepTime | None = field(default=None, compare=False, repr=False)

    def memory_config(self, framework: str, seq_len: int) -> MemoryConfig:
        """The memory model's configuration of this layout under ``framework``'s profile at ``seq_len`` tokens."""
        return MemoryConfig(framework=framework, gpus=self.gpus, tp=self.tp, pp=self.pp, dp=self.dp, ep=self.ep,
                            zero=self.zero_stage, sp=self.sp, seq_len=seq_len, micro_batch=self.micro_batch,
                            grad_accum=self.grad_accum, recompute=self.recompute,
                            precision="fp8" if self.precision == "fp8" else None)

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "dp": self.dp, "tp": self.tp, "pp": self.pp, "zero_stage": self.zero_stage,
                "micro_batch": self.micro_batch, "grad_accum": self.grad_accum, "global_batch": self.global_batch,
                "recompute": self.recompute, "ep": self.ep, "precision": self.precision,
                "sequence_parallel": self.sp, "memory_per_gpu_gib": round(self.memory_gib, 2),
                "relative_throughput": round(self.efficiency, 4),
                "penalties": {k: round(v, 4) for k, v in self.penalties.items()}}


# ---- candidate generators (docs/planning.md §4.1) ---------------------------------------------------------------
# ``fixed`` pins axes of the search: keys tp, pp, dp, ep, micro_batch, zero, recompute, sp (None or absent = searched).
PIN_KEYS = ("tp", "pp", "dp", "ep", "micro_batch", "zero", "recompute", "sp")


def tp_degrees(shape: ModelShape, gpus: int, gpus_per_node: int, tp: int | None = None) -> Iterator[int]:
    """TP t in {1, 2, 4, 8} (or the pinned ``tp``) with t <= min(GPUs per node, GPUs), t dividing the heads and
    dividing (or a multiple of) the KV heads."""
    for t in defaults.TP_DEGREES if tp is None else (tp,):
        if t > min(gpus_per_node, gpus) or shape.n_heads % t or (shape.n_kv_heads % t and t % shape.n_kv_heads):
            continue
        yield t


def pp_degrees(shape: ModelShape, gpus: int, tp: int, pp: int | None = None) -> Iterator[int]:
    """PP p: divisors of the layer count up to 64 (or the pinned ``pp``) with t·p dividing the GPUs."""
    for p in range(1, min(shape.n_layers, defaults.MAX_PP) + 1) if pp is None else (pp,):
        if shape.n_layers % p == 0 and gpus % (tp * p) == 0:
            yield p


def ep_degrees(shape: ModelShape, dp: int, ep: int | None = None) -> Iterator[int]:
    """EP e (MoE only; 1 for dense models): powers of two up to the expert count (or the pinned ``ep``) dividing both
    the experts and the data-parallel size (Megatron-Core carves the expert-parallel group out of DP)."""
    if not shape.n_experts:
        if ep in (None, 1):
            yield 1
        return
    for e in (1 << i for i in range(0, shape.n_experts.bit_length())) if ep is None else (ep,):
        if e <= shape.n_experts and shape.n_experts % e == 0 and dp % e == 0:
            yield e


def zero_stages(pp: int, dp: int, zero: int | None = None) -> Iterator[int]:
    """ZeRO stage 0-3 (or the pinned ``zero``); stages 2 and 3 only without PP (Megatron's distributed optimizer and
    DeepSpeed's pipeline engine shard only the optimizer); no data parallelism -> stage 0 only (a pinned stage is
    kept: it shards nothing)."""
    for z in (0, 1, 2, 3) if zero is None else (zero,):
        if (pp > 1 and z > 1) or (dp == 1 and z > 0 and zero is None):
            continue
        yield z


def batch_splits(global_batch: int, dp: int, pp: int, micro_batch: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(micro-batch b, gradient accumulation m, global batch m·d·b) for b in {1, 2, 4, 8} (or the pinned
    ``micro_batch``): m = max(1, round(target/(d·b)), p if p > 1) so a pipeline has at least p micro-batches, kept
    when m·d·b is within [1/2, 2] x the target."""
    for mb in defaults.MICRO_BATCHES if micro_batch is None else (micro_batch,):
        m = max(1, round(global_batch / (dp * mb)), pp if pp > 1 else 1)
        gbs = m * dp * mb
        if global_batch / defaults.BATCH_TOLERANCE <= gbs <= global_batch * defaults.BATCH_TOLERANCE:
            yield mb, m, gbs


def candidates(shape: ModelShape, gpus: int, global_batch: int, gpus_per_node: int,
               fixed: dict | None = None, precision: str = "bf16") -> Iterator[Layout]:
    """Every layout of the search space, unscored and unchecked: TP x PP x EP x ZeRO x micro-batch x recompute, DP =
    GPUs/(t·p), sequence parallelism on whenever t > 1; axes pinned in ``fixed`` take only the given value; every
    layout computes in ``precision``."""
    f = {k: v for k, v in (fixed or {}).items() if v is not None}
    for t in tp_degrees(shape, gpus, gpus_per_node, f.get("tp")):
        for p in pp_degrees(shape, gpus, t, f.get("pp")):
            d = gpus // (t * p)
            if f.get("dp", d) != d:
                continue
            for e in ep_degrees(shape, d, f.get("ep")):
                for z in zero_stages(p, d, f.get("zero")):
                    for mb, m, gbs in batch_splits(global_batch, d, p, f.get("micro_batch")):
                        for rc in (f["recompute"],) if "recompute" in f else defaults.RECOMPUTE_MODES:
                            yield Layout(gpus=gpus, dp=d, tp=t, pp=p, ep=e, zero_stage=z, micro_batch=mb,
                                         grad_accum=m, global_batch=gbs, recompute=rc,
                                         sp=t > 1 and f.get("sp", True), precision=precision)


# ---- memory filter (docs/planning.md §4.2) ----------------------------------------------------------------------
def fits(est: MemoryEstimate | None, gpu: GPU, headroom: float) -> bool:
    """A layout fits when the memory model could cost it and its device peak fits by the one fit rule
    (memory.fit.fits_gpu, docs/memory.md §7.1; ``headroom`` defaults.MEMORY_HEADROOM = memory.fit.FIT_HEADROOM)."""
    return est is not None and fits_gpu(est.device, gpu.memory_gib, headroom)


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
        k = (L.tp, L.pp, L.ep, L.zero_stage, L.recompute)
        if k in seen:
            continue
        seen.add(k)
        uniq.append(L)
    return uniq[:max_results]


def score(shape: ModelShape, lay: Layout, gpu: GPU, seq: int, gpus_per_node: int, framework: str):
    """The layout's predicted step (:func:`.timing.layout_step`), or None when the step model refuses it."""
    try:
        return timing.layout_step(shape, gpu, lay, seq, gpus_per_node, framework)
    except ScalePlanError:
        return None


def search_layouts(shape: ModelShape, gpu: GPU, gpus: int, global_batch: int, seq: int, gpus_per_node: int,
                   framework: str = "megatron", headroom: float = defaults.MEMORY_HEADROOM,
                   max_results: int = 4, fixed: dict | None = None, precision: str = "bf16") -> list[Layout]:
    """The layouts of ``gpus`` GPUs that fit in memory, fastest first (predicted MFU of the step-time model; at most
    ``max_results``), each with its memory estimate and its step; ``fixed`` pins axes (:data:`PIN_KEYS`)."""
    scored = []
    for lay in candidates(shape, gpus, global_batch, gpus_per_node, fixed, precision):
        est = _estimate(shape, lay, gpu, framework, seq)
        if not fits(est, gpu, headroom):
            continue
        st = score(shape, lay, gpu, seq, gpus_per_node, framework)
        if st is None:
            continue
        scored.append(replace(lay, memory_gib=est.device / GIB, efficiency=st.mfu, penalties=timing.fractions(st),
                              memory=est, step=st))
    return rank(scored, max_results)


# ---- a pinned layout that does not fit: by how much, and what to change ----------------------------------------
def smallest_misfit(shape: ModelShape, gpu: GPU, gpus: int, global_batch: int, seq: int, gpus_per_node: int,
                    framework: str, fixed: dict | None, precision: str = "bf16") -> Layout | None:
    """Of the candidates that honour ``fixed``, the one with the least device memory (with its estimate), or None
    when no candidate honours the pins on ``gpus`` GPUs."""
    best = None
    for lay in candidates(shape, gpus, global_batch, gpus_per_node, fixed, precision):
        est = _estimate(shape, lay, gpu, framework, seq)
        if est is not None and (best is None or est.device < best.memory.device):
            best = replace(lay, memory_gib=est.device / GIB, memory=est)
    return best


def fixes(shape: ModelShape, lay: Layout, gpu: GPU, seq: int, gpus_per_node: int, framework: str,
          headroom: float = defaults.MEMORY_HEADROOM) -> list[str]:
    """Changes to ``lay`` that make it fit, each as "keyword value (GiB then needed)": every single change that
    fits, in this order: full recompute, micro_batch 1, a higher ZeRO stage (without PP), twice the TP, twice the PP
    (GPUs taken from DP, the global batch kept by doubling the accumulation); if none does, the shortest run of them
    applied one after another that fits ("a + b + c"); [] if not even all of them do."""

    def steps(L: Layout) -> list[tuple[str, object, Layout]]:
        out = []
        if L.recompute != "full":
            out.append(("recompute", "full", replace(L, recompute="full")))
        if L.micro_batch > 1:
            out.append(("micro_batch", 1, replace(L, micro_batch=1, grad_accum=L.grad_accum * L.micro_batch)))
        if L.pp == 1 and L.dp > 1:
            out += [("zero", z, replace(L, zero_stage=z)) for z in range(L.zero_stage + 1, 4)]
        if L.dp % 2 == 0:
            t2, p2 = L.tp * 2, L.pp * 2
            if t2 <= gpus_per_node and shape.n_heads % t2 == 0 and not (shape.n_kv_heads % t2 and t2 % shape.n_kv_heads):
                out.append(("tp", t2, replace(L, tp=t2, dp=L.dp // 2, grad_accum=L.grad_accum * 2, sp=True)))
            if shape.n_layers % p2 == 0 and L.zero_stage <= 1:
                out.append(("pp", p2, replace(L, pp=p2, dp=L.dp // 2, grad_accum=max(L.grad_accum * 2, p2))))
        return out

    def need(L: Layout) -> float | None:
        est = _estimate(shape, L, gpu, framework, seq)
        return est.device / GIB if fits(est, gpu, headroom) else None

    single = [f"{k} {v} ({g:.1f} GiB)" for k, v, L in steps(lay) if (g := need(L)) is not None]
    if single:
        return single
    done, cur = [], lay
    for _ in range(8):  # one axis at a time, in the order above, until it fits
        nxt = steps(cur)
        if not nxt:
            return []
        k, v, cur = nxt[0] if nxt[0][0] != "zero" else max((x for x in nxt if x[0] == "zero"), key=lambda x: x[1])
        done = [d for d in done if not d.startswith(k + " ")] + [f"{k} {v}"]
        if (g := need(cur)) is not None:
            return [" + ".join(done) + f" ({g:.1f} GiB)"]
    return []


WHY_LABELS = (("pp_bubble", "pipeline bubble"), ("tp_comm", "TP communication"),
              ("dp_comm_exposed", "exposed DP communication"), ("recompute", "recompute"),
              ("memory_bound", "memory-bound kernels"), ("compute", "compute"), ("ep_comm", "expert all-to-all"))


def why_lost(best: Layout, alt: Layout) -> str:
    """Why ``alt`` ranks below ``best``, in words: its throughput difference and the step terms that cost it more
    time per token than they cost the best layout (each as a share of the best layout's time per token)."""
    rel = alt.efficiency / best.efficiency - 1
    reasons = []
    if alt.penalties and best.penalties:
        # time per token of term k ∝ fraction_k / MFU (same GPUs, same model)
        extra = {k: alt.penalties.get(k, 0) / alt.efficiency - best.penalties.get(k, 0) / best.efficiency
                 for k, _ in WHY_LABELS}
        base = 1 / best.efficiency
        for k, label in sorted(WHY_LABELS, key=lambda kl: -extra[kl[0]]):
            if extra[k] / base > 5e-3:
                reasons.append(f"{label} +{extra[k] / base:.0%}")
    if abs(rel) < 5e-4:
        more = alt.memory_gib - best.memory_gib
        return (f"same throughput, {more:+.1f} GiB per GPU" if abs(more) > 0.05 else "equivalent") + \
            (f"; more model parallelism (tp·pp = {alt.tp * alt.pp})" if alt.tp * alt.pp > best.tp * best.pp else "")
    txt = f"{rel:+.1%} throughput"
    return txt + (" (" + ", ".join(reasons[:3]) + ")" if reasons else "")
