"""The plan: a compute budget -> (N, D) from a law -> model shape -> batch and learning rate -> GPU count -> a
memory-checked parallel layout -> time and cost (docs/planning.md §0), as a short pipeline of named steps.

Conventions (docs/planning.md):
* FLOPs: ``C = 6·N·D`` with N total parameters (as model cards count; 6N per token). ``flops_attn`` adds the
  attention term 12·L·h·s per token (PaLM App. B, full square).
* ``mfu`` is model-FLOPs utilisation in that 6N counting, against the GPU's dense BF16 peak; it is the step MFU the
  *best* layout reaches (defaults: :func:`.defaults.default_mfu`). Other layouts are scaled by the throughput model
  (:mod:`.timing`). ``goodput`` (default 0.9) covers restarts, evals and downtime.
* days, GPU-hours and cost: :mod:`.timing` (the one formula), cost = GPU-hours · $/GPU-hour.
* Global batch and learning rate: DeepSeek LLM's laws (:mod:`.defaults`).

Law names are resolved to :class:`~scaling_planner.laws.ScalingLaw` objects (``io.law_file``) in the first step only;
every later step works on objects and numbers. Errors name the keyword arguments (``ScalePlanError.param``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ScalePlanError
from ..hardware import GPU, get_gpu
from ..laws import ScalingLaw
from ..model import ModelShape, shape_for_params
from . import allocation, defaults, layout, timing
from .layout import Layout

if TYPE_CHECKING:
    from ..memory import MemoryEstimate


@dataclass(frozen=True)
class ScanPoint:
    """Time and cost at one GPU count, with the best layout there (MFU scaled by the throughput model)."""

    gpus: int
    days: float
    gpu_hours: float
    cost_usd: float | None
    mfu: float


@dataclass(frozen=True)
class Plan:
    """Everything a plan decided and everything its renderers draw. ``alternatives`` are the JSON rows of
    ``alternative_layouts`` (with their MFU, days and why they lost); ``scan`` is time and cost vs GPU count, present
    only when asked for (``plan_budget(scan=True)``)."""

    law: str
    flops: float
    params: float
    tokens: float
    loss: float | None
    interval: dict
    comparison: list
    shape: ModelShape
    flops_attn: float
    layout: Layout
    memory: MemoryEstimate
    alternatives: list
    gpu: GPU
    days: float
    gpu_hours: float
    cost_usd: float | None
    price: float | None
    mfu: float
    goodput: float
    seq_len: int
    global_batch: int
    learning_rate: float
    gpus_per_node: int
    framework: str
    notes: tuple[str, ...] = ()
    assumptions: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    alternative_layouts: tuple[Layout, ...] = ()
    scan: tuple[ScanPoint, ...] | None = None

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict:
        s = self.shape
        return {
            "law": self.law, "flops": self.flops, "flops_6nd": 6 * self.params * self.tokens,
            "flops_attn": self.flops_attn, "params": self.params, "tokens": self.tokens,
            "tokens_per_param": self.tokens_per_param, "loss": self.loss, "interval": self.interval,
            "comparison": self.comparison,
            "shape": {"n_layers": s.n_layers, "d_model": s.d_model, "n_heads": s.n_heads, "n_kv_heads": s.n_kv_heads,
                      "ffn": s.ffn, "vocab": s.vocab, "head_dim": s.head_dim, "params_total": s.params_total},
            "layout": {k: v for k, v in self.layout.to_dict().items() if k not in ("penalties",)},
            "memory_per_gpu_gib": round(self.layout.memory_gib, 3),
            "memory_breakdown_gib": self.memory.to_dict()["per_gpu_gib"],
            "gpu": self.gpu.key, "gpu_memory_gib": round(self.gpu.memory_gib, 2),
            "days": self.days, "gpu_hours": self.gpu_hours, "cost_usd": self.cost_usd,
            "price_usd_per_gpu_hour": self.price, "mfu": self.mfu, "goodput": self.goodput,
            "mfu_counts": "6N FLOPs per token (model FLOPs, no recompute), dense BF16 peak",
            "seq_len": self.seq_len, "global_batch": self.global_batch,
            "global_batch_tokens": self.global_batch * self.seq_len, "learning_rate": self.learning_rate,
            "alternatives": [dict(a) for a in self.alternatives], "notes": list(self.notes),
            "assumptions": self.assumptions, **self.extras,
        }


# ---- step 1: validate the inputs --------------------------------------------------------------------------------
def _validate(*, flops, gpus, days, params, tokens, target_loss, mfu, goodput, price, seq_len, vocab,
              gpus_per_node, max_gpus, deadline_days, inference_tokens, unique_tokens, global_batch) -> None:
    for name, v in (("flops", flops), ("params", params), ("tokens", tokens), ("days", days),
                    ("inference_tokens", inference_tokens), ("unique_tokens", unique_tokens),
                    ("target_loss", target_loss)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise ScalePlanError(f"{name} must be a positive, finite number, got {v}", param=name)
    if not (0 < goodput <= 1):
        raise ScalePlanError(f"goodput must be in (0, 1], got {goodput}", param="goodput")
    if mfu is not None and not (0 < mfu <= 1):
        raise ScalePlanError(f"mfu must be in (0, 1], got {mfu}", param="mfu")
    for name, v in (("seq_len", seq_len), ("vocab", vocab)):
        if v <= 0:
            raise ScalePlanError(f"{name} must be positive", param=name)
    if (gpus is None) != (days is None) and flops is None and params is None and tokens is None \
            and target_loss is None:
        raise ScalePlanError("gpus and days go together (the budget is then GPUs x days x peak x MFU x goodput)",
                             param=("gpus", "days"))
    if gpus is not None and gpus <= 0:
        raise ScalePlanError("gpus must be a positive integer", param="gpus")
    if max_gpus is not None and gpus is not None and gpus > max_gpus:
        raise ScalePlanError(f"gpus {gpus} exceeds max_gpus {max_gpus}", param="gpus")
    if gpus is not None and deadline_days is not None:
        raise ScalePlanError("give gpus or deadline_days, not both", param="deadline_days")
    for name, v in (("gpus_per_node", gpus_per_node), ("max_gpus", max_gpus)):
        if v is not None and v < 1:
            raise ScalePlanError(f"{name} must be a positive integer, got {v}", param=name)
    if deadline_days is not None and not (deadline_days > 0 and math.isfinite(deadline_days)):
        raise ScalePlanError(f"deadline_days must be a positive number, got {deadline_days}", param="deadline_days")
    if price is not None and not (price >= 0 and math.isfinite(price)):
        raise ScalePlanError(f"price must be a price in $ per GPU-hour (>= 0), got {price}", param="price")
    if global_batch is not None and global_batch <= 0:
        raise ScalePlanError("global_batch must be a positive number of sequences", param="global_batch")


# ---- step 2: resolve names (the only step that reads files) -----------------------------------------------------
def _resolve_law(law: str | ScalingLaw) -> ScalingLaw:
    if isinstance(law, ScalingLaw):
        return law
    from ..io.law_file import load_law

    return load_law(law)


# ---- step 3: the compute budget ---------------------------------------------------------------------------------
def _hardware_budget(g: GPU, peak: float, gpus: int, days: float, mfu: float | None, goodput: float,
                     params: float | None, tokens: float | None, lw: ScalingLaw) -> float:
    """C = GPUs × days at the MFU of the model that C buys. The default MFU depends on the model size, which
    depends on C: iterate to the consistent pair so the plan's own time formula returns exactly ``days``."""
    N_guess = params if params is not None else 1e10
    for _ in range(4):
        m0 = mfu if mfu is not None else defaults.default_mfu(g, N_guess, gpus)[0]
        C_hw = timing.flops_in(days, gpus, peak, m0, goodput)
        if params is not None or tokens is not None or not lw.has_optimal:
            N_guess = params if params is not None else C_hw / (6 * tokens) if tokens else N_guess
            if params is not None or tokens is None:
                break
        else:
            N_guess = float(lw.optimal(C_hw)[0])
    return C_hw


# ---- step 4: allocation (N, D) ----------------------------------------------------------------------------------
def _allocate(lw: ScalingLaw, C: float | None, C_hw: float | None, flops, gpus, days, params, tokens, target_loss,
              notes: list[str]) -> tuple[float, float, float]:
    if sum(x is not None for x in (flops, target_loss)) + (C_hw is not None) > 1:
        if flops is not None and C_hw is not None and abs(C_hw / flops - 1) > 0.05:
            raise ScalePlanError(f"flops {flops:.3g} disagrees with gpus {gpus} x days {days:g} "
                                 f"({C_hw:.3g} FLOPs at this MFU/goodput); give one or the other",
                                 param=("flops", "gpus", "days"))
        if target_loss is not None and (flops is not None or C_hw is not None):
            raise ScalePlanError("give target_loss or a compute budget, not both", param="target_loss")
    if params is not None and tokens is not None:
        C6 = 6 * params * tokens
        if C is not None and abs(C6 / C - 1) > 0.05:
            raise ScalePlanError(f"params x tokens gives 6ND = {C6:.3g} FLOPs, which disagrees with the budget "
                                 f"{C:.3g}; drop one of them", param=("params", "tokens"))
        notes.append("N and D fixed by --params/--tokens; the law only predicts the loss")
        return C6, params, tokens
    if target_loss is not None:
        C = allocation.compute_for_loss(lw, target_loss)
        notes.append(f"compute-optimal budget for loss {target_loss:g} under {lw.name}")
        N, D = (float(x) for x in lw.optimal(C))
        return C, N, D
    if C is not None:
        if params is not None:
            return C, params, C / (6 * params)
        if tokens is not None:
            return C, C / (6 * tokens), tokens
        if not lw.has_optimal:
            raise ScalePlanError(f"law {lw.name} has no compute-optimal allocation")
        N, D = (float(x) for x in lw.optimal(C))
        return C, N, D
    if params is not None:
        C = allocation.optimal_for_params(lw, params)
        notes.append(f"D chosen so that {params:.3g} params is compute-optimal under {lw.name}")
        return C, params, C / (6 * params)
    if tokens is not None:
        C = allocation.optimal_for_tokens(lw, tokens)
        notes.append(f"N chosen so that {tokens:.3g} tokens is compute-optimal under {lw.name}")
        return C, C / (6 * tokens), tokens
    raise ScalePlanError("give a budget: flops, or gpus and days, or params and/or tokens, or target_loss")


def _check_size(C: float, N: float) -> None:
    if not (C > 0 and math.isfinite(C)):
        raise ScalePlanError("the compute budget must be a positive, finite number of FLOPs")
    if N > defaults.MAX_PARAMS:
        raise ScalePlanError(f"a budget of {C:.3g} FLOPs gives a {N:.3g}-parameter model, beyond the largest shape "
                             f"scaleplan plans ({defaults.MAX_PARAMS:.0e} params); give a smaller budget")
    if N < defaults.MIN_PARAMS or C < defaults.MIN_FLOPS:
        raise ScalePlanError(f"a budget of {C:.3g} FLOPs gives a {N:.3g}-parameter model: too small for any "
                             f"model scaleplan plans (need >= {_sci(defaults.MIN_PARAMS)} params and "
                             f"{_sci(defaults.MIN_FLOPS)} FLOPs)")


def _sci(x: float) -> str:
    """2e7, 1e15: a round number as written in the docs."""
    return f"{x:.0e}".replace("e+0", "e").replace("e+", "e")


def _adjust(lw: ScalingLaw, C: float, N: float, D: float, inference_tokens, unique_tokens, repetition,
            notes: list[str], extras: dict) -> tuple[float, float, float]:
    """Inference-aware (Sardana et al. 2024) and data-constrained (Muennighoff et al. 2023) re-allocation."""
    if inference_tokens is not None:
        ia = allocation.inference_aware(lw, C, inference_tokens)
        C_budget = C
        N, D = ia["params"], ia["tokens"]
        C = 6 * N * D
        extras["inference_aware"] = ia
        notes.append(f"inference-aware (Sardana et al. 2024): {N:.3g} params on {D:.3g} tokens reach the "
                     f"compute-optimal loss and save {ia['saving_fraction']:.1%} of lifetime FLOPs "
                     f"with {inference_tokens:.3g} inference tokens")
        if C > C_budget * 1.005:
            notes.append(f"WARNING: training this smaller model takes {C:.3g} FLOPs, {C / C_budget - 1:.0%} more "
                         f"than the {C_budget:.3g}-FLOP budget; the time and cost below are for {C:.3g} FLOPs "
                         "(inference then costs less over the model's lifetime)")
    if unique_tokens is not None:
        if D > unique_tokens:
            dc = allocation.data_constrained(lw, C, unique_tokens, repetition)
            N, D = dc["params"], dc["tokens"]
            extras["data_constrained"] = dc
            notes.append(f"data-constrained (Muennighoff et al. 2023): {dc['epochs']:.1f} epochs over "
                         f"{unique_tokens:.3g} unique tokens; {N:.3g} params")
            if dc["epochs"] > 16:
                notes.append("more than ~16 epochs: repeated data is worth almost nothing beyond this (R_D* = 15.4)")
        else:
            extras["data_constrained"] = {"epochs": D / unique_tokens, "note": "enough unique data"}
    return C, N, D


def _loss_and_interval(lw: ScalingLaw, C: float, N: float, D: float, at_optimum: bool, extras: dict):
    loss = float(lw.loss(N, D)) if lw.has_loss else None
    interval = allocation.law_interval(lw, C, None if at_optimum else (N, D)) if lw.samples else {}
    dc = extras.get("data_constrained", {})
    if "epochs" in dc and "note" not in dc:
        loss = dc["loss"]  # repeated data is discounted (Muennighoff et al.); no interval for it
        interval = {}
    return loss, interval


# ---- step 5: shape ----------------------------------------------------------------------------------------------
def shape_divisibility(N: float) -> tuple[int, int]:
    """(heads divisible by, layers divisible by) for the layout search: 8 heads from 2e9 params; 2 / 4 / 8 layers
    from 5e9 / 2e10 / 1e11 params (docs/planning.md §3.1)."""
    tp_req = 8 if N >= 2e9 else 1
    pp_req = 8 if N >= 1e11 else 4 if N >= 2e10 else 2 if N >= 5e9 else 1
    return tp_req, pp_req


# ---- step 6: batch and learning rate ----------------------------------------------------------------------------
def _batch(C: float, seq_len: int, global_batch: int | None) -> tuple[int, float, str]:
    """Global batch in sequences (DeepSeek's B_opt rounded to a power of two, or the given one), B_opt in tokens
    and where the batch came from."""
    b_tokens = defaults.deepseek_batch_tokens(C)
    if global_batch is not None:
        return global_batch, b_tokens, "global batch given"
    gb = max(1, int(round(b_tokens / seq_len)))
    gb = 2 ** int(round(math.log2(gb))) if gb > 1 else 1
    k, e = defaults.DEEPSEEK_BATCH
    return gb, b_tokens, f"global batch from DeepSeek's B_opt = {k:.4f}·C^{e:.4f} = {b_tokens:.3g} tokens"


# ---- step 7: GPU count ------------------------------------------------------------------------------------------
def _gpus_for_days(C, target_days, g, peak, m0, mfu_given, goodput, N, gpn) -> int:
    """The fewest GPUs that do C in ``target_days``: whole nodes above one node, a power of two below (§4.4)."""
    n = timing.gpus_for(C, target_days, peak, m0, goodput)
    if not mfu_given and n > defaults.MFU_LARGE_CLUSTER[0]:  # the default MFU is lower at this scale
        n = timing.gpus_for(C, target_days, peak, defaults.default_mfu(g, N, int(n) + 1)[0], goodput)
    return max(1, int(math.ceil(n / gpn)) * gpn) if n > gpn else max(1, 2 ** int(math.ceil(math.log2(max(n, 1)))))


def _gpu_count(C, g, peak, m0, mfu_given, goodput, N, gpn, gb, gpus, deadline_days, max_gpus) -> tuple[int, str]:
    # Each data-parallel rank needs >= 1 sequence per step, and a pipeline of p stages >= p micro-batches, so
    # tp·pp·dp <= 2·global_batch·tp_max (the search keeps the batch within 2x): past this no layout can work.
    max_useful = _max_useful(gb, gpn)
    if gpus is not None:
        G, why = gpus, "given"
    elif deadline_days is not None:
        G = _gpus_for_days(C, deadline_days, g, peak, m0, mfu_given, goodput, N, gpn)
        why = f"fewest GPUs (whole nodes) that finish within {deadline_days:g} days"
        if G > min(max_useful, defaults.MAX_GPUS):
            raise ScalePlanError(f"deadline_days {deadline_days:g} would need about {G:,} x {g.name} (at MFU "
                                 f"{m0:.2f}), more than a global batch of {gb} sequences can keep busy; give a "
                                 "longer deadline or a larger global_batch",
                                 param=("deadline_days", "global_batch"))
    else:
        G = _gpus_for_days(C, defaults.DEFAULT_DAYS, g, peak, m0, mfu_given, goodput, N, gpn)
        why = f"default: whole nodes that finish in about {defaults.DEFAULT_DAYS:g} days"
        if G > defaults.MAX_GPUS:
            raise ScalePlanError(f"{C:.3g} FLOPs would need about {G:,} x {g.name} for {defaults.DEFAULT_DAYS:g} "
                                 "days; give gpus or deadline_days, or a smaller budget")
    if max_gpus is not None and G > max_gpus:
        why = f"capped by --max-gpus {max_gpus} (the {why.split(': ', 1)[-1]} needs {G:,})"
        G = max_gpus
    return G, why


def _max_useful(gb: int, gpn: int) -> int:
    return int(defaults.BATCH_TOLERANCE * gb * min(max(defaults.TP_DEGREES), gpn))


# ---- step 8: layouts --------------------------------------------------------------------------------------------
def _layouts(shape, g, G, gb, seq_len, m0, gpn, framework, gpus, max_gpus, why) -> tuple[list[Layout], int, str]:
    """The best layouts on G GPUs; without a fixed ``gpus``, G grows (doubling below a node, then by whole nodes)
    until one fits, up to ``max_gpus``, the most the batch can use, or 60 tries (docs/planning.md §4.4)."""
    max_useful = _max_useful(gb, gpn)
    tried, G0 = 0, G
    while True:
        found = layout.search_layouts(shape, g, G, gb, seq_len, m0, gpn, framework=framework)
        if found or gpus is not None:
            break
        tried += 1
        G = G * 2 if G < gpn else G + gpn * max(1, G // (8 * gpn))
        if (max_gpus is not None and G > max_gpus) or G > max_useful or tried > 60:
            break
    if G != G0 and found:
        why += f"; raised from {G0} until a layout fits"
    if not found:
        where = f"{G:,} x {g.name}" if gpus is not None else f"{G0:,} to {G:,} x {g.name}"
        raise ScalePlanError(f"no parallel layout of a {shape.params_total / 1e9:.3g}B model fits on {where} "
                             f"with global batch {gb} x {seq_len}: "
                             + ("give more gpus, " if gpus is not None else
                                "raise max_gpus, " if max_gpus is not None else "")
                             + "a different global_batch, or a GPU with more memory",
                             param="gpus" if gpus is not None else "max_gpus" if max_gpus is not None else None)
    return found, G, why


def _alternatives(best: Layout, others: Sequence[Layout], m0: float, days_: float) -> list[dict]:
    """JSON rows of the alternatives: MFU and days scaled by relative throughput, and why each lost."""
    return [{**L.to_dict(), "mfu": round(m0 * L.efficiency / best.efficiency, 4),
             "days": days_ * best.efficiency / L.efficiency, "why_lost": layout.why_lost(best, L)} for L in others]


# ---- step 9: time and cost --------------------------------------------------------------------------------------
def scan_gpu_counts(plan_flops: float, shape: ModelShape, g: GPU, best: Layout, global_batch: int, seq_len: int,
                    mfu: float, goodput: float, price: float | None, gpn: int, framework: str) -> tuple[ScanPoint, ...]:
    """Time and cost at 1/4 to 4x the chosen GPU count (multiples of 8), best layout at each count, MFU scaled by
    its relative throughput against the chosen layout's."""
    base = best.gpus
    counts = sorted({max(8, int(base * f) // 8 * 8) for f in (0.25, 0.5, 1, 2, 4)} | {base})
    peak = g.peak_tflops("bf16") * 1e12
    out = []
    for n in counts:
        lays = layout.search_layouts(shape, g, n, global_batch, seq_len, mfu, gpn, framework=framework,
                                     max_results=1)
        if not lays:
            continue
        m = mfu * lays[0].efficiency / best.efficiency
        d = timing.days(plan_flops, n, peak, m, goodput)
        h = timing.gpu_hours(d, n)
        out.append(ScanPoint(gpus=n, days=d, gpu_hours=h, cost_usd=None if price is None else h * price, mfu=m))
    return tuple(out)


# ---- the pipeline -----------------------------------------------------------------------------------------------
def plan_budget(*, flops: float | None = None, gpus: int | None = None, days: float | None = None,
                params: float | None = None, tokens: float | None = None, target_loss: float | None = None,
                gpu: str | GPU = "a100-80", law: str | ScalingLaw = defaults.DEFAULT_LAW, mfu: float | None = None,
                goodput: float = defaults.GOODPUT, price: float | None = None, seq_len: int = 4096,
                global_batch: int | None = None, vocab: int = 32000, gpus_per_node: int | None = None,
                max_gpus: int | None = None, deadline_days: float | None = None,
                inference_tokens: float | None = None, unique_tokens: float | None = None,
                compare: Sequence[str | ScalingLaw] | None = None, framework: str = "megatron",
                prices: Mapping | None = None, repetition: Mapping[str, float] | None = None,
                scan: bool = False) -> Plan:
    """Plan a pre-training run (docs/planning.md §0); see the module docstring for conventions.

    Give a budget as ``flops``, ``gpus`` + ``days``, ``params`` and/or ``tokens``, or ``target_loss``. ``law`` and
    ``compare`` take catalogue names, law-file paths or ScalingLaw objects; ``repetition`` (``R_D_star``,
    ``R_N_star``) defaults to the ``muennighoff2023`` law's. ``scan=True`` also fills ``Plan.scan`` (time and cost
    vs GPU count; five more layout searches)."""
    _validate(flops=flops, gpus=gpus, days=days, params=params, tokens=tokens, target_loss=target_loss, mfu=mfu,
              goodput=goodput, price=price, seq_len=seq_len, vocab=vocab, gpus_per_node=gpus_per_node,
              max_gpus=max_gpus, deadline_days=deadline_days, inference_tokens=inference_tokens,
              unique_tokens=unique_tokens, global_batch=global_batch)
    # names -> objects
    lw = _resolve_law(law)
    g = gpu if isinstance(gpu, GPU) else get_gpu(gpu, prices)
    gpn = gpus_per_node or g.gpus_per_node
    if not compare:
        compare = tuple(n for n in defaults.COMPARE_LAWS if n != lw.name)[:2]
    compare_laws = [_resolve_law(c) for c in compare]
    if unique_tokens is not None and repetition is None:
        repetition = _resolve_law(defaults.REPETITION_LAW).params
    notes: list[str] = []
    extras: dict = {}
    peak = g.peak_tflops("bf16") * 1e12
    if not g.supports_bf16:
        notes.append(f"{g.name} has no bf16 tensor cores: using its fp16 peak ({g.peak_tflops('fp16'):g} TFLOP/s)")

    # budget and allocation
    C_hw = None
    if gpus is not None and days is not None:
        C_hw = _hardware_budget(g, peak, gpus, days, mfu, goodput, params, tokens, lw)
    C = flops if flops is not None else C_hw
    C, N, D = _allocate(lw, C, C_hw, flops, gpus, days, params, tokens, target_loss, notes)
    _check_size(C, N)
    if lw.form == "chinchilla" and lw.params.get("beta") == 0.28:
        notes.append("WARNING: Chinchilla's rounded Approach-3 constants give ~50-150 tokens/param; "
                     "epoch2024 or chinchilla-approach1 reproduce Chinchilla's ~20")
    C, N, D = _adjust(lw, C, N, D, inference_tokens, unique_tokens, repetition, notes, extras)
    at_optimum = (params is None and tokens is None and inference_tokens is None
                  and "data_constrained" not in extras or extras.get("data_constrained", {}).get("note"))
    loss, interval = _loss_and_interval(lw, C, N, D, at_optimum, extras)
    comparison = allocation.compare_laws(compare_laws, C)

    # shape, batch, learning rate
    tp_req, pp_req = shape_divisibility(N)
    shape = shape_for_params(N, vocab=vocab, tp=tp_req, pp=pp_req, name=f"planned-{N / 1e9:.3g}B")
    flops_attn = D * shape.flops_per_token(seq_len)
    gb, b_tokens, batch_note = _batch(C, seq_len, global_batch)
    lr = defaults.deepseek_learning_rate(C)

    # GPUs and layouts
    m0, mfu_why = (mfu, "given") if mfu is not None else defaults.default_mfu(g, N, gpus)
    G, gpu_why = _gpu_count(C, g, peak, m0, mfu is not None, goodput, N, gpn, gb, gpus, deadline_days, max_gpus)
    found, G, gpu_why = _layouts(shape, g, G, gb, seq_len, m0, gpn, framework, gpus, max_gpus, gpu_why)
    best = found[0]
    if G > defaults.MFU_LARGE_CLUSTER[0] and mfu is None:
        m0, mfu_why = defaults.default_mfu(g, N, G)

    # time and cost
    days_ = timing.days(C, G, peak, m0, goodput)
    if deadline_days is not None and days_ > deadline_days * 1.01:
        notes.append(f"WARNING: the plan takes {days_:.1f} days, past --deadline-days {deadline_days:g}"
                     + (f" (capped by --max-gpus {max_gpus})" if max_gpus is not None else ""))
    elif gpus is None and deadline_days is None and days_ > defaults.DEFAULT_DAYS * 1.5:
        notes.append(f"WARNING: the plan takes {days_:,.0f} days on {G:,} GPUs"
                     + (f" (capped by --max-gpus {max_gpus}; about {defaults.DEFAULT_DAYS:g} days needs more GPUs)"
                        if max_gpus is not None else ""))
    gpu_hours = timing.gpu_hours(days_, G)
    unit_price = price if price is not None else g.price_usd_per_hour
    cost = None if unit_price is None else gpu_hours * unit_price
    if unit_price is None:
        notes.append(f"no default price for {g.name}: pass --price to get a cost")
    others = tuple(found[1:4])
    assumptions = {
        "mfu": m0, "mfu_source": mfu_why, "goodput": goodput, "gpus_source": gpu_why, "gpus_per_node": gpn,
        "peak_tflops_bf16": peak / 1e12, "time_formula": "days = C_6ND / (GPUs x peak x MFU x goodput) / 86400",
        "batch": batch_note,
        "batch_reference_tokens": {"deepseek_B_opt": b_tokens, "kaplan_B_crit_at_predicted_loss":
                                   (2.1e8 / loss ** (1 / 0.21)) if loss else None,
                                   "note": "Kaplan's B_crit uses WebText2 losses; shown for reference only"},
        "lr_source": "DeepSeek LLM eta_opt = 0.3118·C^-0.1250 (their data and batch)",
        "memory_profile": f"{framework} (layouts costed per GPU with scaleplan memory)",
        "layout_rules": "TP <= GPUs per node and divides heads; PP divides layers; ZeRO-2/3 only without PP; "
                        "tp·pp·dp = GPUs; device peak <= 95% of usable memory",
        "shape_rule": "Llama-like: head_dim 128, d_model/n_layers ~ 128, SwiGLU ffn = 256·ceil(8d/3/256), "
                      f"heads divisible by {tp_req}, layers by {pp_req}",
        "price_source": "--price" if price is not None else g.price_source,
        "law_conventions": dict(lw.conventions),
    }
    return Plan(law=lw.name, flops=C, params=float(N), tokens=float(D), loss=loss, interval=interval,
                comparison=comparison, shape=shape, flops_attn=float(flops_attn), layout=best, memory=best.memory,
                alternatives=_alternatives(best, others, m0, days_), gpu=g, days=days_, gpu_hours=gpu_hours,
                cost_usd=cost, price=unit_price, mfu=m0, goodput=goodput, seq_len=seq_len,
                global_batch=best.global_batch, learning_rate=lr, gpus_per_node=gpn, framework=framework,
                notes=tuple(notes), assumptions=assumptions, extras=extras, alternative_layouts=others,
                scan=scan_gpu_counts(C, shape, g, best, best.global_batch, seq_len, m0, goodput, unit_price, gpn,
                                     framework) if scan else None)
