"""The plan: a compute budget -> (N, D) from a law -> model shape -> batch and learning rate -> GPU count -> a
memory-checked parallel layout -> time and cost (docs/planning.md §0), as a short pipeline of named steps.

Conventions (docs/planning.md):
* FLOPs: ``C = 6·N·D`` with N total parameters (as model cards count; 6N per token). ``flops_attn`` adds the
  attention term 12·L·h·s per token (PaLM App. B, full square).
* Every layout is timed by the step-time model (:mod:`.steptime`, through :func:`.timing.layout_step`); the search
  picks the fastest that fits. ``mfu`` is the chosen layout's predicted model-FLOPs utilisation (6·N_active per
  token against the GPU's dense BF16 peak), ``hfu`` the FLOPs the hardware executes (attention, recompute).
  ``goodput`` (default 0.9) covers restarts, evals and downtime.
* days = D / (tokens/s) / goodput / 86,400; with ``mfu`` given, the MFU formula C / (G · peak · MFU · goodput)
  instead (:mod:`.timing`); GPU-hours = 24 · days · G, cost = GPU-hours · $/GPU-hour.
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
from ..model import ModelShape, check_moe_counts, moe_shape, shape_for_params
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
    step_time_s: float | None = None  # one optimizer step (seconds) of the chosen layout
    tokens_per_s: float | None = None  # whole job
    hfu: float | None = None  # predicted hardware-FLOPs utilisation (None when mfu is given)
    time_breakdown: dict = field(default_factory=dict)  # seconds per step (steptime.BREAKDOWN_KEYS)

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
            "step_time_s": self.step_time_s, "tokens_per_s": self.tokens_per_s, "hfu": self.hfu,
            "time_breakdown": dict(self.time_breakdown),
            **({"moe": {"experts": s.n_experts, "top_k": s.top_k, "shared_experts": s.shared_experts,
                        "params_active": s.params_active, "params_total": s.params_total}} if s.n_experts else {}),
            "alternatives": [dict(a) for a in self.alternatives], "framework": self.framework,
            "notes": list(self.notes),
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


FRAMEWORKS = ("megatron", "deepspeed", "hf", "torchtune")  # the stacks a plan is costed for (memory profile, kernels)
RECOMPUTE = ("none", "selective", "full")


def _validate_layout(pins: dict, *, gpus, deadline_days, max_gpus, framework) -> int | None:
    """Check the pinned layout keywords (``tp``, ``pp``, ``dp``, ``ep``, ``micro_batch``, ``zero``, ``recompute``, ``sp``)
    and ``framework``; return the GPU count a full layout (tp, pp and dp) fixes, else None."""
    if framework not in FRAMEWORKS:
        raise ScalePlanError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}", param="framework")
    for name in ("tp", "pp", "dp", "ep", "micro_batch"):
        v = pins[name]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ScalePlanError(f"{name} must be a positive integer, got {v!r}", param=name)
    if pins["zero"] is not None and pins["zero"] not in (0, 1, 2, 3):
        raise ScalePlanError(f"zero must be a ZeRO stage 0, 1, 2 or 3, got {pins['zero']!r}", param="zero")
    if pins["recompute"] is not None and pins["recompute"] not in RECOMPUTE:
        raise ScalePlanError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {pins['recompute']!r}",
                             param="recompute")
    if pins["sp"] is not None and not isinstance(pins["sp"], bool):
        raise ScalePlanError(f"sp must be True or False, got {pins['sp']!r}", param="sp")
    if pins["sp"] and pins["tp"] == 1:
        raise ScalePlanError("sequence parallelism splits the sequence over the TP ranks: it needs tp > 1 (drop sp "
                             "or give a larger tp)", param=("sp", "tp"))
    if (pins["pp"] or 1) > 1 and (pins["zero"] or 0) > 1:
        raise ScalePlanError(f"zero {pins['zero']} needs pp 1: with pipeline parallelism Megatron's distributed "
                             "optimizer and DeepSpeed's pipeline engine shard only the optimizer (use zero 0 or 1)",
                             param=("zero", "pp"))
    given = {k: pins[k] for k in ("tp", "pp", "dp") if pins[k] is not None}
    unit = math.prod(given.values())
    what = "·".join(given) + (f" = {'·'.join(map(str, given.values()))} = {unit}" if len(given) > 1 else f" {unit}")
    if len(given) == 3:
        if gpus is not None and gpus != unit:
            raise ScalePlanError(f"gpus {gpus} disagrees with the layout {what}; give one or the other",
                                 param=("gpus", *given))
        if deadline_days is not None:
            raise ScalePlanError(f"deadline_days cannot move the GPU count: the layout {what} fixes it; drop "
                                 "deadline_days or one of tp, pp, dp", param="deadline_days")
        if max_gpus is not None and unit > max_gpus:
            raise ScalePlanError(f"the layout {what} GPUs exceeds max_gpus {max_gpus}", param="max_gpus")
        return unit
    if given and gpus is not None and gpus % unit:
        raise ScalePlanError(f"{what} must divide gpus {gpus}", param=tuple(given))
    return None


def _check_pins_fit_shape(pins: dict, shape: ModelShape, gpn: int) -> None:
    """Pinned TP and PP must suit the model: TP divides the heads (and the KV heads, or is a multiple of them) and
    stays inside a node; PP divides the layers (docs/planning.md §4.1)."""
    tp, pp, ep = pins["tp"], pins["pp"], pins["ep"]
    if ep is not None and ep > 1 and (not shape.n_experts or shape.n_experts % ep):
        raise ScalePlanError(f"ep {ep} needs an MoE model whose experts it divides (this model has "
                             f"{shape.n_experts or 'no'} experts)", param="ep")
    if tp is not None:
        if shape.n_heads % tp or (shape.n_kv_heads % tp and tp % shape.n_kv_heads):
            raise ScalePlanError(f"tp {tp} must divide the {shape.n_heads} attention heads (and the "
                                 f"{shape.n_kv_heads} KV heads, or be a multiple of them)", param="tp")
        if tp > gpn:
            raise ScalePlanError(f"tp {tp} exceeds the {gpn} GPUs per node: tensor parallelism stays inside a node "
                                 "(Narayanan et al. 2021 §3); use a smaller tp and more pp", param="tp")
    if pp is not None and shape.n_layers % pp:
        raise ScalePlanError(f"pp {pp} must divide the {shape.n_layers} layers", param="pp")


def _validate_moe(experts, top_k, shared_experts, shape) -> None:
    """``experts``, ``top_k`` and ``shared_experts`` (MoE from a law or a parameter count): integers, experts and
    top_k together, the counts as :func:`~scaling_planner.model.check_moe_counts` wants them; not with a shape (its
    own experts decide)."""
    if isinstance(shared_experts, bool) or not isinstance(shared_experts, int):
        raise ScalePlanError(f"shared_experts must be a count >= 0, got {shared_experts!r}", param="shared_experts")
    if experts is None and top_k is None:
        if shared_experts:
            raise ScalePlanError(f"shared_experts {shared_experts} needs experts and top_k", param="shared_experts")
        return
    if shape is not None:
        raise ScalePlanError("give experts/top_k or a model shape, not both: the shape's experts decide",
                             param=("experts", "top_k"))
    for name, v in (("experts", experts), ("top_k", top_k)):
        if v is None or isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ScalePlanError(f"{name} must be a positive integer (experts and top_k go together), got {v!r}",
                                 param=name)
    check_moe_counts(experts, top_k, shared_experts)


def _validate_precision(precision: str, g: GPU, framework: str) -> None:
    """bf16, or fp8 on a GPU with an FP8 peak under a stack that runs FP8 GEMMs (Transformer Engine: megatron)."""
    if precision not in ("bf16", "fp8"):
        raise ScalePlanError(f"precision must be bf16 or fp8, got {precision!r}", param="precision")
    if precision == "fp8":
        if not g.fp8_tflops:
            raise ScalePlanError(f"{g.name} has no FP8 tensor cores: use precision bf16 or an H100/H200/B200-class "
                                 "GPU", param="precision")
        if framework != "megatron":
            raise ScalePlanError(f"precision fp8 is costed for Megatron-LM with Transformer Engine; framework "
                                 f"{framework} trains in bf16: use framework megatron or precision bf16",
                                 param=("precision", "framework"))


# ---- step 2: resolve names (the only step that reads files) -----------------------------------------------------
def _resolve_law(law: str | ScalingLaw) -> ScalingLaw:
    if isinstance(law, ScalingLaw):
        return law
    from ..io.law_file import load_law

    return load_law(law)


# ---- step 3: the compute budget ---------------------------------------------------------------------------------
def _hardware_budget(g: GPU, peak: float, gpus: int, days: float, mfu: float | None, goodput: float,
                     params: float | None, tokens: float | None, lw: ScalingLaw, tps_at=None) -> float:
    """C = what ``gpus`` GPUs train in ``days``. With ``mfu`` given: C = G·peak·MFU·goodput·days (§5.2), iterated
    with the default MFU of the model that C buys when it is not given. Otherwise the step-time model decides:
    ``tps_at(N, C)`` is the tokens/s of the best layout of the N-parameter model on these GPUs, and C = 6·N·D with
    D = tokens/s · goodput · days · 86,400 is iterated to the consistent point (N from the law at C, or fixed by
    ``params``; with ``tokens`` fixed, N scaled until D takes ``days``), so the plan's own time returns ``days``."""
    N_guess = params if params is not None else 1e10
    m0 = mfu if mfu is not None else defaults.default_mfu(g, N_guess, gpus)[0]
    C_hw = timing.flops_in(days, gpus, peak, m0, goodput)
    if mfu is not None:
        for _ in range(4):
            C_hw = timing.flops_in(days, gpus, peak, m0, goodput)
            if params is not None or tokens is not None or not lw.has_optimal:
                break
            N_guess = float(lw.optimal(C_hw)[0])
        return C_hw
    seconds = days * goodput * defaults.SECONDS_PER_DAY
    tried = []  # (C, the time in units of the target it takes)
    for _ in range(BUDGET_ITERATIONS):
        N = params if params is not None else C_hw / (6 * tokens) if tokens is not None else \
            float(lw.optimal(C_hw)[0]) if lw.has_optimal else N_guess
        tps = tps_at(N, C_hw) if tps_at is not None else None
        if tps is None:  # no layout fits: the layout step reports it; keep the MFU-formula budget
            return C_hw
        ratio = C_hw / (6 * N) / tps / seconds
        tried.append((C_hw, ratio))
        if abs(ratio - 1) < BUDGET_TOLERANCE:
            return C_hw
        under = [cr for cr in tried if cr[1] < 1]
        over = [cr for cr in tried if cr[1] > 1]
        if under and over:  # bracketed: where log(ratio) crosses 0, linear in log C between the nearest two
            (c0, r0), (c1, r1) = max(under), min(over)
            w = math.log(r0) / (math.log(r0) - math.log(r1))
            C_hw = c0 * (c1 / c0) ** min(0.9, max(0.1, w))
        else:  # fixed-point step: D = tps·T at this N
            C_hw = 6 * N * tps * seconds
    # not settled: the shape rule jumps between two sizes whose times straddle the target (§3.1); take the largest
    # budget that finishes in time, else the nearest
    within = [c for c, r in tried if r <= 1 + BUDGET_TOLERANCE]
    return max(within) if within else min(tried, key=lambda cr: abs(cr[1] - 1))[0]


BUDGET_ITERATIONS = 12  # scaleplan: GPUs x days -> C iterations (each a shape and a layout search)
BUDGET_TOLERANCE = 1e-3  # scaleplan: settled when the plan's days are within this fraction of the days given


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


def _check_size(C: float, N: float, shape_given: bool = False) -> None:
    """The budget is a positive, finite number of FLOPs; unless the shape is given, N is within the sizes the
    planner builds (docs/planning.md §2.4)."""
    if not (C > 0 and math.isfinite(C)):
        raise ScalePlanError("the compute budget must be a positive, finite number of FLOPs")
    if shape_given:
        return
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
        why = f"capped by --max-gpus {max_gpus} (the {why.split(': ', 1)[-1]} needs more)"
        G = max_gpus
    return G, why


def _round_gpus(n: float, gpn: int, unit: int = 1) -> int:
    """Whole nodes above one node, a power of two below (§4.4), then a multiple of ``unit`` (pinned tp·pp·dp)."""
    G = max(1, int(math.ceil(n / gpn)) * gpn) if n > gpn else max(1, 2 ** int(math.ceil(math.log2(max(n, 1)))))
    return -(-G // unit) * unit


def _resize_for_days(found, G, D, target_days, goodput, search, gpn, unit, max_gpus, max_useful):
    """Re-size G with the modelled throughput: G · (days at G)/target, rounded (§4.4), searched again, until G
    settles; then, while the plan still overruns the target, one more node (or doubling below a node). Returns the
    layouts found and G."""
    def days_of(lays):
        return timing.days_from_throughput(D, lays[0].step.tokens_per_s, goodput)

    seen = {G}
    for _ in range(6):
        want = _round_gpus(G * days_of(found) / target_days, gpn, unit)
        if max_gpus is not None:
            want = min(want, max_gpus)
        want = min(want, max_useful)
        if want == G:
            break
        try:
            f2, G2 = search(want)
        except ScalePlanError:
            break
        found, G = f2, G2
        if G in seen:
            break
        seen.add(G)
    for _ in range(60):
        if days_of(found) <= target_days * (1 + 1e-9):
            break
        nxt = _round_gpus(G + 1 if G >= gpn else 2 * G, gpn, unit)
        if (max_gpus is not None and nxt > max_gpus) or nxt > max_useful:
            break
        try:
            found, G = search(nxt)
        except ScalePlanError:
            break
    return found, G


def _max_useful(gb: int, gpn: int) -> int:
    return int(defaults.BATCH_TOLERANCE * gb * min(max(defaults.TP_DEGREES), gpn))


# ---- step 8: layouts --------------------------------------------------------------------------------------------
def _layouts(shape, g, G, gb, seq_len, gpn, framework, gpus, max_gpus, why,
             fixed: dict | None = None, precision: str = "bf16") -> tuple[list[Layout], int, str]:
    """The best layouts on G GPUs (honouring the pinned axes in ``fixed``); without a fixed ``gpus``, G grows
    (doubling below a node, then by whole nodes, kept a multiple of the pinned tp·pp·dp) until one fits, up to
    ``max_gpus``, the most the batch can use, or 60 tries (docs/planning.md §4.4)."""
    pins = {k: v for k, v in (fixed or {}).items() if v is not None}
    unit = math.prod(pins.get(k, 1) for k in ("tp", "pp", "dp"))
    max_useful = _max_useful(gb, gpn)
    if gpus is None and G % unit:
        G = -(-G // unit) * unit
    tried, G0 = 0, G
    while True:
        found = layout.search_layouts(shape, g, G, gb, seq_len, gpn, framework=framework, fixed=pins,
                                      precision=precision)
        if found or gpus is not None:
            break
        tried += 1
        G = G * 2 if G < gpn else G + gpn * max(1, G // (8 * gpn))
        G = -(-G // unit) * unit
        if (max_gpus is not None and G > max_gpus) or G > max_useful or tried > 60:
            break
    if G != G0 and found:
        why += f"; raised from {G0} until a layout fits"
    if not found:
        if pins and gpus is not None:
            raise _pinned_misfit(shape, g, G, gb, seq_len, gpn, framework, pins, precision)
        where = f"{G:,} x {g.name}" if gpus is not None else f"{G0:,} to {G:,} x {g.name}"
        given = ", ".join(f"{k} {v}" for k, v in pins.items())
        raise ScalePlanError(f"no parallel layout of a {shape.params_total / 1e9:.3g}B model fits on {where} "
                             f"with global batch {gb} x {seq_len}" + (f" and {given}" if pins else "") + ": "
                             + ("give more gpus, " if gpus is not None else
                                "raise max_gpus, " if max_gpus is not None else "")
                             + ("change " + " or ".join(pins) + ", " if pins else "")
                             + "a different global_batch, or a GPU with more memory",
                             param=tuple(pins) or ("gpus" if gpus is not None else
                                                   "max_gpus" if max_gpus is not None else None))
    return found, G, why


def _axes(shape: ModelShape) -> tuple[str, ...]:
    """The layout axes the search has for ``shape`` (layout.PIN_KEYS; EP only for MoE models)."""
    return tuple(k for k in layout.PIN_KEYS if k != "ep" or shape.n_experts)


def _pinned_misfit(shape, g, G, gb, seq_len, gpn, framework, pins: dict, precision: str = "bf16") -> ScalePlanError:
    """The error for pinned layout keywords with which nothing fits on G GPUs: by how much the smallest such layout
    overruns the usable memory, and which single changes make it fit (docs/planning.md §4.2)."""
    given = ", ".join(f"{k} {v}" for k, v in pins.items())
    lay = layout.smallest_misfit(shape, g, G, gb, seq_len, gpn, framework, pins, precision)
    if lay is None:
        return ScalePlanError(f"no layout of {G:,} GPUs has {given} with a global batch near {gb} sequences of "
                              f"{seq_len} (tp·pp·dp = GPUs, pp divides the layers, at least pp micro-batches); "
                              f"change {' or '.join(pins)}, gpus or global_batch", param=tuple(pins))
    from ..memory.fit import usable_gib

    usable = usable_gib(g.memory_gib, defaults.MEMORY_HEADROOM)  # the one fit rule (docs/memory.md §7.1)
    desc = (f"tp {lay.tp}, pp {lay.pp}, dp {lay.dp}, " + (f"ep {lay.ep}, " if shape.n_experts else "")
            + f"zero {lay.zero_stage}, micro_batch {lay.micro_batch}, recompute {lay.recompute}")
    how = layout.fixes(shape, lay, g, seq_len, gpn, framework)
    searched = [k for k in _axes(shape) if k not in pins and k != "sp"]
    return ScalePlanError(
        f"the layout {desc}" + (f" (the smallest with {given})" if searched else "")
        + f" needs {lay.memory_gib:.1f} GiB per GPU, {lay.memory_gib - usable:.1f} GiB more than the {usable:.1f} "
        f"GiB usable on {g.name} ({1 - defaults.MEMORY_HEADROOM:.0%} of {g.memory_gib:.1f} GiB); "
        + ("it fits with " + ", or ".join(how) if how else
           "no change of recompute, micro_batch, zero, tp or pp on these GPUs fits it: give more GPUs or a GPU "
           "with more memory"),
        param=tuple(pins))


def _alternatives(best: Layout, others: Sequence[Layout], m0: float, days_: float) -> list[dict]:
    """JSON rows of the alternatives: their predicted MFU (scaled to ``m0`` when an MFU was given), days at their
    throughput, and why each lost (from the step breakdown)."""
    return [{**L.to_dict(), "mfu": round(m0 * L.efficiency / best.efficiency, 4),
             "days": days_ * best.efficiency / L.efficiency, "why_lost": layout.why_lost(best, L)} for L in others]


# ---- step 9: time and cost --------------------------------------------------------------------------------------
def scan_gpu_counts(plan_flops: float, tokens: float, shape: ModelShape, g: GPU, best: Layout, global_batch: int,
                    seq_len: int, mfu: float | None, goodput: float, price: float | None, gpn: int,
                    framework: str, fixed: dict | None = None, precision: str = "bf16") -> tuple[ScanPoint, ...]:
    """Time and cost at 1/4 to 4x the chosen GPU count (multiples of 8), the fastest layout at each count: days from
    its modelled tokens/s, or with ``mfu`` given, the MFU formula at ``mfu`` × its throughput / the chosen one's."""
    base = best.gpus
    counts = sorted({max(8, int(base * f) // 8 * 8) for f in (0.25, 0.5, 1, 2, 4)} | {base})
    peak = g.peak_tflops("bf16") * 1e12
    out = []
    for n in counts:
        lays = [best] if n == base else layout.search_layouts(shape, g, n, global_batch, seq_len, gpn,
                                                                framework=framework, max_results=1, fixed=fixed,
                                                                precision=precision)
        if not lays:
            continue
        if mfu is None:
            m = lays[0].efficiency
            d = timing.days_from_throughput(tokens, lays[0].step.tokens_per_s, goodput)
        else:
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
                scan: bool = False, shape: ModelShape | None = None, tp: int | None = None, pp: int | None = None,
                dp: int | None = None, micro_batch: int | None = None, zero: int | None = None,
                recompute: str | None = None, sp: bool | None = None, ep: int | None = None,
                precision: str = "bf16", experts: int | None = None, top_k: int | None = None,
                shared_experts: int = 0) -> Plan:
    """Plan a pre-training run (docs/planning.md §0); see the module docstring for conventions.

    Give a budget as ``flops``, ``gpus`` + ``days``, ``params`` and/or ``tokens``, or ``target_loss``. ``law`` and
    ``compare`` take catalogue names, law-file paths or ScalingLaw objects; ``repetition`` (``R_D_star``,
    ``R_N_star``) defaults to the ``muennighoff2023`` law's. ``scan=True`` also fills ``Plan.scan`` (time and cost
    vs GPU count; five more layout searches).

    ``shape`` fixes the model (N = its parameter count, active parameters for MoE; ``vocab`` is then unused).
    ``tp``, ``pp``, ``dp``, ``micro_batch``, ``zero``, ``recompute``, ``sp`` pin the layout search (docs/planning.md
    §4.1): given together, tp·pp·dp fixes the GPU count and the layout is checked rather than searched; ``ep`` pins
    expert parallelism (MoE). ``framework`` (megatron, deepspeed, hf, torchtune) is the stack the layouts are costed
    for; ``precision`` "fp8" runs the layer GEMMs in FP8 (Transformer Engine: megatron on GPUs with an FP8 peak).

    MoE: a ``shape`` with experts, or ``experts`` + ``top_k`` with a law-chosen (or ``params``) size: N is then the
    *active* parameter count (C = 6·N_active·D) and the planned shape is :func:`~scaling_planner.model.moe_shape` of
    the dense shape of N (each of the ``top_k`` routed experts an ffn/top_k slice, so the active width is the dense
    model's)."""
    pins = dict(tp=tp, pp=pp, dp=dp, ep=ep, micro_batch=micro_batch, zero=zero, recompute=recompute, sp=sp)
    G_fixed = _validate_layout(pins, gpus=gpus, deadline_days=deadline_days, max_gpus=max_gpus, framework=framework)
    if shape is not None:
        if not isinstance(shape, ModelShape):
            raise ScalePlanError(f"shape must be a ModelShape, got {type(shape).__name__}", param="shape")
        if params is not None:
            raise ScalePlanError("give params or a model shape, not both: the shape fixes N", param="params")
        params = float(shape.params_active)
    if G_fixed is not None and gpus is None:
        gpus = G_fixed
    _validate_moe(experts, top_k, shared_experts, shape)
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
        # a fitted data-constrained law carries its own R_D*, R_N* (fit --method data_constrained --save)
        repetition = lw.params if lw.form == "data_constrained" else _resolve_law(defaults.REPETITION_LAW).params
    notes: list[str] = []
    extras: dict = {}
    _validate_precision(precision, g, framework)
    peak = g.peak_tflops("bf16") * 1e12
    if not g.supports_bf16:
        notes.append(f"{g.name} has no bf16 tensor cores: using its fp16 peak ({g.peak_tflops('fp16'):g} TFLOP/s)")

    # budget and allocation
    shapes: dict = {}

    def shape_of(N: float) -> tuple[ModelShape, str]:
        if shape is not None:
            return shape, f"given: {shape.name} ({shape.params_total:,} params)"
        tp_req, pp_req = shape_divisibility(N)
        if N not in shapes:  # the budget iteration (§2.4) asks again for the same N
            shapes[N] = shape_for_params(N, vocab=vocab, tp=tp_req, pp=pp_req, name=f"planned-{N / 1e9:.3g}B")
            if experts:
                shapes[N] = moe_shape(shapes[N], experts, top_k, name=f"planned-{N / 1e9:.3g}B-active-{experts}e",
                                      shared=shared_experts)
        rule = ("Llama-like: head_dim 128, d_model/n_layers ~ 128, SwiGLU ffn = 256·ceil(8d/3/256), "
                f"heads divisible by {tp_req}, layers by {pp_req}")
        if experts:
            k = top_k + shared_experts
            rule += (f"; MoE: that dense shape of the active N with {experts} routed"
                     + (f" + {shared_experts} shared" if shared_experts else "") + f" experts of ffn/{k} "
                     f"(the {k} active experts keep the dense width)")
        return shapes[N], rule

    def tps_at(N: float, C: float) -> float | None:  # the best layout's tokens/s on the given GPUs (§2.4)
        if not (defaults.MIN_PARAMS <= N <= defaults.MAX_PARAMS) and shape is None:
            return None
        shp = shape_of(N)[0]
        try:
            _check_pins_fit_shape(pins, shp, gpn)
        except ScalePlanError:
            return None
        found = layout.search_layouts(shp, g, gpus, _batch(C, seq_len, global_batch)[0], seq_len, gpn,
                                      framework=framework, max_results=1, fixed=pins, precision=precision)
        return found[0].step.tokens_per_s if found else None

    C_hw = None
    if gpus is not None and days is not None:
        C_hw = _hardware_budget(g, peak, gpus, days, mfu, goodput, params, tokens, lw, tps_at)
    C = flops if flops is not None else C_hw
    C, N, D = _allocate(lw, C, C_hw, flops, gpus, days, params, tokens, target_loss, notes)
    _check_size(C, N, shape_given=shape is not None)
    if lw.form == "chinchilla" and lw.params.get("beta") == 0.28:
        notes.append("WARNING: Chinchilla's rounded Approach-3 constants give ~50-150 tokens/param; "
                     "epoch2024 or chinchilla-approach1 reproduce Chinchilla's ~20")
    C, N, D = _adjust(lw, C, N, D, inference_tokens, unique_tokens, repetition, notes, extras)
    at_optimum = (params is None and tokens is None and inference_tokens is None
                  and "data_constrained" not in extras or extras.get("data_constrained", {}).get("note"))
    loss, interval = _loss_and_interval(lw, C, N, D, at_optimum, extras)
    comparison = allocation.compare_laws(compare_laws, C)

    # shape, batch, learning rate
    shape, shape_rule = shape_of(N)
    if shape.n_experts:
        notes.append(f"MoE: the law was applied to the {shape.params_active / 1e9:.3g}B active parameters "
                     f"(a dense law; C = 6·N_active·D); memory holds all {shape.params_total / 1e9:.3g}B")
    _check_pins_fit_shape(pins, shape, gpn)
    flops_attn = D * shape.flops_per_token(seq_len)
    gb, b_tokens, batch_note = _batch(C, seq_len, global_batch)
    lr = defaults.deepseek_learning_rate(C)

    # GPUs and layouts: a first count from the MFU formula (the given MFU, or the default table's as a guess), then
    # without a given count, re-sized with the step-time model's throughput (§4.4)
    m_guess = mfu if mfu is not None else defaults.default_mfu(g, N, gpus)[0]
    G, gpu_why = _gpu_count(C, g, peak, m_guess, mfu is not None, goodput, N, gpn, gb, gpus, deadline_days,
                            max_gpus)
    if G_fixed is not None:
        gpu_why = "tp·pp·dp given"
    found, G, gpu_why = _layouts(shape, g, G, gb, seq_len, gpn, framework, gpus, max_gpus, gpu_why, pins, precision)
    if mfu is None and gpus is None:
        G0 = G
        unit = math.prod(v for k, v in pins.items() if k in ("tp", "pp", "dp") and v is not None)
        found, G = _resize_for_days(
            found, G, D, deadline_days or defaults.DEFAULT_DAYS, goodput,
            lambda n: _layouts(shape, g, n, gb, seq_len, gpn, framework, None, max_gpus, "", pins, precision)[:2],
            gpn, unit, max_gpus, _max_useful(gb, gpn))
        if G != G0:
            gpu_why += f"; {G0:,} re-sized to {G:,} with the step-time model's throughput"
    best = found[0]
    pinned = [k for k, v in pins.items() if v is not None]
    if pinned:
        notes.append("layout: " + ", ".join(pinned) + " given"
                     + ("; the rest searched" if set(_axes(shape)) - set(pinned) else ""))
    if global_batch is not None and best.global_batch != global_batch:
        notes.append(f"global batch {best.global_batch} sequences (accumulation x DP x micro-batch), not the "
                     f"{global_batch} given: the nearest this layout splits into")

    # time and cost
    st = best.step
    if mfu is None:
        m0, mfu_why = best.efficiency, "predicted by the step-time model (docs/planning.md §5.4)"
        tps, hfu = st.tokens_per_s, st.hfu
        days_ = timing.days_from_throughput(D, tps, goodput)
        time_formula = "days = D / tokens_per_s / goodput / 86400 (tokens/s of the step-time model)"
    else:
        m0, mfu_why = mfu, "given; overrides the step-time model's prediction"
        tps, hfu = G * peak * mfu / (6 * N), None
        days_ = timing.days(C, G, peak, m0, goodput)
        time_formula = "days = C_6ND / (GPUs x peak x MFU x goodput) / 86400 (MFU given)"
        notes.append(f"MFU {mfu:g} given: the time uses it, not the step-time model's prediction ({st.mfu:.3f} for "
                     f"this layout, {st.seconds:.3g} s per step; its time_breakdown is shown)")
    if gpu_why.startswith("capped by") and days_ > (deadline_days or defaults.DEFAULT_DAYS):
        need = _round_gpus(G * days_ / (deadline_days or defaults.DEFAULT_DAYS), gpn)  # linear in G: a floor
        gpu_why = gpu_why.replace("needs more)", f"needs at least {need:,} at this layout's throughput)")
    if days is not None and gpus is not None and abs(days_ / days - 1) > 0.01:
        notes.append(f"the plan takes {days_:.3g} of the {days:g} days given: model sizes near this budget change "
                     "shape (docs/planning.md §3.1) and their step times straddle the target")
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
        "peak_tflops_bf16": peak / 1e12, "time_formula": time_formula,
        "step_time_model": {k: (list(v) if isinstance(v, tuple) else v) for k, v in st.assumptions.items()},
        "batch": batch_note,
        "batch_reference_tokens": {"deepseek_B_opt": b_tokens, "kaplan_B_crit_at_predicted_loss":
                                   (2.1e8 / loss ** (1 / 0.21)) if loss else None,
                                   "note": "Kaplan's B_crit uses WebText2 losses; shown for reference only"},
        "lr_source": "DeepSeek LLM eta_opt = 0.3118·C^-0.1250 (their data and batch)",
        "memory_profile": f"{framework} (layouts costed per GPU with scaleplan memory)",
        "precision": precision + (" (Transformer Engine FP8 GEMMs; LM head, attention and optimizer as in bf16 mixed "
                                  "precision)" if precision == "fp8" else " mixed precision"),
        "layout_rules": "TP <= GPUs per node and divides heads; PP divides layers; ZeRO-2/3 only without PP; "
                        "tp·pp·dp = GPUs; device peak <= 95% of usable memory; fastest predicted step first",
        "shape_rule": shape_rule,
        "price_source": "--price" if price is not None else g.price_source,
        "law_conventions": dict(lw.conventions),
    }
    return Plan(law=lw.name, flops=C, params=float(N), tokens=float(D), loss=loss, interval=interval,
                comparison=comparison, shape=shape, flops_attn=float(flops_attn), layout=best, memory=best.memory,
                alternatives=_alternatives(best, others, m0, days_), gpu=g, days=days_, gpu_hours=gpu_hours,
                cost_usd=cost, price=unit_price, mfu=m0, goodput=goodput, seq_len=seq_len,
                global_batch=best.global_batch, learning_rate=lr, gpus_per_node=gpn, framework=framework,
                notes=tuple(notes), assumptions=assumptions, extras=extras, alternative_layouts=others,
                scan=scan_gpu_counts(C, D, shape, g, best, best.global_batch, seq_len, mfu, goodput, unit_price, gpn,
                                     framework, pins, precision) if scan else None,
                step_time_s=best.global_batch * seq_len / tps, tokens_per_s=tps, hfu=hfu,
                time_breakdown=dict(st.breakdown))
