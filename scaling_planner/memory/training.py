"""Training memory of one rank, step by step (docs/memory.md §1-§3, §7).

1. :func:`stage_params` — parameters one TP rank of the first and of the last pipeline stage holds (§2);
2. :func:`state_bytes` — bytes per parameter of weights, gradients and optimizer state (§1, §6);
3. :func:`model_states` — the rank's weights, gradients and optimizer bytes after ZeRO sharding (§2);
4. :func:`offload_states` — what CPU offload moves off the GPU (§3);
5. buffers — one function per buffer (§7); under FP8, the cached FP8 weight copies (:func:`fp8_weight_copies`, §13);
6. :func:`phases` — end of forward, end of backward, optimizer step; the peak is the largest (§7);
7. :func:`train_peak` — both stages, the larger reported.

All sizes in bytes per GPU; ``c`` is a resolved, validated MemoryConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import LINEARS, ModelShape
from . import activations, states
from .profiles import DS_BUCKET_ELEMENTS, Profile


# ---------------------------------------------------------------------------- 1. parameters on a rank
@dataclass(frozen=True)
class StageParams:
    """Parameters on one TP rank of one pipeline stage (docs/memory.md §2)."""

    split: float  # block parameters split over TP (and experts over EP): (L/p)·(layer − norms − router)/t
    rep: float  # block parameters replicated over TP: (L/p)·(norms + router)
    emb: float  # token embedding V·h/t + learned positions (first stage)
    head: float  # LM head V·h/t (last stage; untied, or the tied copy when p > 1)
    norm: float  # final norm + extra parameters (last stage)
    expert: float = 0.0  # the part of ``split`` that is expert MLPs (E/ep local experts): ZeRO shards it over dp/ep

    @property
    def total(self) -> float:
        return self.split + self.rep + self.emb + self.head + self.norm


def stage_params(shape: ModelShape, c) -> tuple[StageParams, StageParams]:
    """(first stage, last stage) parameters on one TP rank; with p = 1 both are the one stage (docs/memory.md §2)."""
    t, p = c.tp, c.pp
    Lp = shape.n_layers // p
    norm_layer = shape.norms_per_layer * shape._norm_params()
    router = shape.d_model * shape.n_experts if shape.n_experts else 0
    experts = Lp * shape.n_experts * shape.mlp_params() / (t * c.ep) if shape.n_experts else 0.0
    split = Lp * (shape.layer_params() - norm_layer - router - shape.n_experts * shape.mlp_params()) / t + experts
    rep = Lp * (norm_layer + router)
    emb = shape.vocab * shape.d_model / t + shape.learned_pos * shape.d_model
    head = shape.vocab * shape.d_model / t
    final_norm = shape._norm_params() + shape.extra_params
    if p == 1:
        one = StageParams(split, rep, emb, 0.0 if shape.tied_embeddings else head, final_norm, experts)
        return one, one
    return (StageParams(split, rep, emb, 0.0, 0.0, experts),
            StageParams(split, rep, 0.0, head, final_norm, experts))


def linear_sets(shape: ModelShape, c) -> tuple[set[str], set[str]]:
    """(trainable, adapted) linears: all of them trained in a full fine-tune, the LoRA targets adapted otherwise."""
    targets = set(LINEARS if c.method == "full" else c.lora_targets)
    if not shape.gated_mlp:
        targets.discard("gate")
    return (targets, set()) if c.method == "full" else (set(), targets)


def lora_params_per_layer(shape: ModelShape, rank: int, targets) -> int:
    """LoRA parameters of one layer: r·(in + out) per adapted linear, × experts for MoE MLP linears (Hu et al. 2021;
    docs/memory.md §6). PEFT's count for q,v on Llama-3.2-3B r=32 is 9,175,040."""
    mult = shape.n_experts + shape.shared_experts if shape.n_experts else 1
    total = 0
    for name, (i, o) in shape.linear_shapes().items():
        if name in targets:
            total += rank * (i + o) * (mult if name in ("gate", "up", "down") else 1)
    return total


# ---------------------------------------------------------------------------- 2. bytes per parameter
@dataclass(frozen=True)
class StateBytes:
    """Bytes per parameter (docs/memory.md §1, §6). ``adapter`` is (weight, grad, optimizer) of LoRA adapters."""

    weight: float  # base weights as stored (NF4 handled in model_states)
    grad: float
    optimizer: float  # optimizer states incl. the fp32 master copy (and DeepSpeed's fp32 gradient partition)
    state: float  # one optimizer state's width (the step temporary's)
    adapter: tuple[float, float, float] | None
    # QLoRA: bytes of the base parameters that stay unquantised (embeddings, LM head, norms, router): 16 bit, or fp32
    # when the profile has kbit_fp32_upcast (prepare_model_for_kbit_training; docs/memory.md §6.1)
    unquantised: float = 2.0


def state_bytes(shape: ModelShape, c, prof: Profile) -> StateBytes:
    """Bytes per parameter under the precision, optimizer, profile and method of ``c`` (docs/memory.md §1, §6)."""
    p = states.PRECISIONS[c.precision]
    w_b = p.weight
    if c.method != "full" and c.precision == "amp":
        w_b = 2  # LoRA recipes load the frozen base in 16 bit; autocast then has nothing to cast
    opt_b = p.master + states.optimizer_state_bytes(c.optimizer, p.state, shape, shape.params_total)
    if prof.fp32_grad_partition and c.zero >= 1 and p.grad < 4:
        opt_b += 4  # DeepSpeed's ZeRO optimizer: fp32 copy of its gradient partition (§11.5)
    adapter = None
    if c.method != "full":
        a_w, a_g, a_o = prof.adapter_bytes if c.lora_dtype is None else states.ADAPTER_BYTES[c.lora_dtype]
        if c.optimizer != "adamw":
            a_o = states.optimizer_state_bytes(c.optimizer, a_w, shape, shape.params_total)
        adapter = (a_w, a_g, a_o)
    # prepare_model_for_kbit_training: "cast all non INT8 parameters to fp32" (src/peft/utils/other.py @ peft 5d602fd)
    unq = 4.0 if c.method == "qlora" and prof.kbit_fp32_upcast else 2.0
    return StateBytes(w_b, p.grad, opt_b, p.state, adapter, unq)


def lora_params_on_rank(shape: ModelShape, c, adapted) -> float:
    """LoRA parameters on one rank: (L/p)·(per layer)/t (0 in a full fine-tune)."""
    if c.method == "full":
        return 0.0
    return shape.n_layers // c.pp * lora_params_per_layer(shape, c.lora_rank, adapted) / c.tp


# ---------------------------------------------------------------------------- 3. model states after ZeRO
@dataclass(frozen=True)
class ModelStates:
    """Bytes of one rank's model states on the GPU, after ZeRO sharding and offload, and on the CPU."""

    weights: float
    gradients: float
    optimizer: float
    params: float  # parameters on the rank (before sharding)
    trainable: float  # trainable parameters on the rank (before sharding)
    cpu: float = 0.0  # bytes offloaded to CPU RAM by this rank


def model_states(shape: ModelShape, c, sb: StateBytes, rp: StageParams, lora_params: float) -> ModelStates:
    """Weights, gradients and optimizer bytes on one rank, sharded by :func:`states.shard` (docs/memory.md §1, §2, §6).
    LoRA/QLoRA: the frozen base (NF4 on the TP-split linears under QLoRA, 16 bit elsewhere) plus the adapters; only
    the adapters have gradients and optimizer state."""
    n = rp.total
    if c.method == "full":
        # MoE with EP: the local experts' states shard over the expert-data-parallel group (dp / ep ranks hold the
        # same experts; Megatron-Core expert_data_parallel group), the rest over dp
        dense, ex = n - rp.expert, rp.expert
        W, G, O = states.shard(sb.weight * dense, sb.grad * dense, sb.optimizer * dense, c.zero, c.dp)
        We, Ge, Oe = states.shard(sb.weight * ex, sb.grad * ex, sb.optimizer * ex, c.zero, c.dp // c.ep)
        return ModelStates(W + We, G + Ge, O + Oe, n, n)
    if c.method == "qlora":
        base = states.NF4_DQ_BYTES * rp.split + sb.unquantised * (rp.rep + rp.emb + rp.head + rp.norm)
    else:
        base = sb.weight * n
    a_w, a_g, a_o = sb.adapter
    W, G, O = states.shard(base + a_w * lora_params, a_g * lora_params, a_o * lora_params, c.zero, c.dp)
    return ModelStates(W, G, O, n, lora_params)


# ---------------------------------------------------------------------------- 4. offload
def offload_states(ms: ModelStates, c, prof: Profile) -> ModelStates:
    """ZeRO-Offload (Ren et al. 2021; docs/memory.md §3): ``optimizer`` moves the optimizer states (with the master)
    and the gradient partition to the CPU, where the gradients are fp32 (4 B/param unless the profile already counts an
    fp32 partition); ``params`` also the weights."""
    W, G, O, cpu = ms.weights, ms.gradients, ms.optimizer, 0.0
    if c.offload in ("optimizer", "params"):
        cpu += O + (0.0 if prof.fp32_grad_partition else 4 * ms.trainable / c.dp)
        O = G = 0.0
    if c.offload == "params":
        cpu += W
        W = 0.0
    return ModelStates(W, G, O, ms.params, ms.trainable, cpu)


# ---------------------------------------------------------------------------- 5. buffers (docs/memory.md §7)
def autocast_copies(shape: ModelShape, c, rp: StageParams) -> float:
    """``amp`` full fine-tune: autocast's 16-bit copies of the TP-split, embedding and head weights, kept for
    backward (and, for leaf parameters, in autocast's cast cache until the forward's autocast exits): 2 B × those
    parameters. Under ZeRO-3 / FSDP with full recompute only the layer in flight holds copies: the gathered
    parameters are views of the flat parameter, which autocast does not cache (aten/src/ATen/autocast_mode.cpp
    ``cached_cast``: leaf, requires_grad, not a view), and recompute drops what the forward saved (docs/memory.md
    §3)."""
    if c.precision != "amp" or c.method != "full":
        return 0.0
    if c.zero == 3 and c.recompute == "full":
        return 2 * _layer_on_rank(shape, c)
    return 2 * (rp.split + rp.emb + rp.head)


def _layer_on_rank(shape: ModelShape, c) -> float:
    """One layer's parameters on a TP rank before ZeRO-3 sharding: the local experts only (E/ep) under EP."""
    local = shape.layer_params() - (shape.n_experts * shape.mlp_params() * (1 - 1 / c.ep) if shape.n_experts else 0)
    return local / c.tp


def zero3_gather_forward(shape: ModelShape, c, sb: StateBytes) -> float:
    """ZeRO-3: the gathered weights of the current and the prefetched layer, 2 × weight bytes × layer params / t
    (NF4 bytes under QLoRA; DeepSpeed's estimator counts 4 B × the largest layer, §3)."""
    if c.zero != 3:
        return 0.0
    w = states.NF4_DQ_BYTES if c.method == "qlora" else sb.weight
    return 2 * w * _layer_on_rank(shape, c)


def zero3_gather_backward(shape: ModelShape, c, sb: StateBytes) -> float:
    """ZeRO-3 in backward: one layer's unsharded gradients, gradient bytes × layer params / t (full fine-tune)."""
    return sb.grad * _layer_on_rank(shape, c) if c.zero == 3 and c.method == "full" else 0.0


def qlora_dequant_buffer(shape: ModelShape, c) -> float:
    """QLoRA: one dequantised 16-bit copy of the largest linear, 2 B × max(in·out) / t."""
    if c.method != "qlora":
        return 0.0
    return 2 * max(i * o for i, o in shape.linear_shapes().values()) / c.tp


def kbit_head_cast_copy(shape: ModelShape, c, prof: Profile, holds_head: bool) -> float:
    """QLoRA with the fp32 upcast (:func:`activations.kbit_upcast`): autocast casts the frozen fp32 LM head to bf16 for
    the head GEMM and the GEMM saves that copy for the input gradient (autocast caches casts only of leaves that
    require grad), 2·V·h/t on the stage holding the head, alive from the end of forward to the head's backward
    (docs/memory.md §6.1)."""
    if not (holds_head and activations.kbit_upcast(c, prof)):
        return 0.0
    return 2 * shape.vocab * shape.d_model / c.tp


# bitsandbytes pages a state only for tensors of at least 1e5 elements (Optimizer8bit.get_state_buffer,
# bitsandbytes/optim/optimizer.py @ 95f9af3); smaller ones (norms, LoRA A/B of small linears) and the absmax stay
# ordinary torch tensors.
PAGED_MIN_NUMEL = 1e5


def paged_state_params(shape: ModelShape, c, adapted) -> float:
    """Trainable parameters on one rank (before ZeRO) whose optimizer state bitsandbytes pages: those in tensors
    of at least :data:`PAGED_MIN_NUMEL` elements (docs/memory.md §1 paged optimizers)."""
    lin = shape.linear_shapes()
    experts = shape.n_experts / c.ep + shape.shared_experts if shape.n_experts else 1
    Lp = shape.n_layers // c.pp

    def big(n: float) -> float:
        return n if n >= PAGED_MIN_NUMEL else 0.0

    total = 0.0
    if c.method == "full":
        for name, (i, o) in lin.items():
            total += (experts if name in ("gate", "up", "down") else 1) * big(i * o / c.tp)
        total *= Lp
        first, last = stage_params(shape, c)
        total += big(first.emb) + (big(last.head) if c.pp == 1 else 0.0)
        return total
    for name, (i, o) in lin.items():
        if name in adapted:
            total += (experts if name in ("gate", "up", "down") else 1) * (big(c.lora_rank * i / c.tp)
                                                                         + big(o * c.lora_rank / c.tp))
    return Lp * total


def paged_optimizer_bytes(shape: ModelShape, c, ms: ModelStates, adapted) -> float:
    """Bytes of the rank's optimizer states that paged bitsandbytes optimizers keep in CUDA unified memory
    (``F.get_paged`` -> ``cget_managed_ptr`` -> ``cudaMallocManaged``, bitsandbytes/functional.py and
    csrc/pythonInterface.cpp @ 95f9af3): on the device once touched, but outside PyTorch's allocator, so in the
    ``device`` peak and not in ``allocated``/``reserved``. Two uint8 states (paged-adamw-8bit) or two fp32 states
    (paged-adamw-32bit) per paged parameter, sharded like the optimizer; 0 with CPU offload or other optimizers."""
    per = states.PAGED_STATE_BYTES.get(c.optimizer, 0.0)
    if not per or c.offload != "none":
        return 0.0
    b = per * paged_state_params(shape, c, adapted)
    b = b / c.dp if states.sharded(c.zero)["optimizer"] else b
    return min(b, ms.optimizer)


def ddp_bucket_copy(c, prof: Profile, ms: ModelStates) -> float:
    """Profiles with a DDP bucket copy, ZeRO-0, d > 1: one more copy of the gradients in backward (§11.2)."""
    return ms.gradients if prof.ddp_bucket_copy and c.zero == 0 and c.dp > 1 else 0.0


def deepspeed_buckets(c, prof: Profile, sb: StateBytes, ms: ModelStates) -> float:
    """DeepSpeed ZeRO-1/2: a reduce bucket of min(5e8, trainable) gradients and an all-gather bucket of
    min(5e8, params) weights, in backward (§11.5)."""
    if not (prof.ds_buckets and c.zero in (1, 2)):
        return 0.0
    return min(DS_BUCKET_ELEMENTS, ms.trainable) * sb.grad + min(DS_BUCKET_ELEMENTS, ms.params) * sb.weight


def optimizer_step_temporary(c, prof: Profile, sb: StateBytes, ms: ModelStates) -> float:
    """Profiles whose optimizer step allocates one state-sized temporary (foreach AdamW; AdamW, Lion, SGD-momentum):
    state bytes × trainable params, sharded with the optimizer; none with offload (§7, §11.1)."""
    if not (prof.opt_temp and c.optimizer in states.STEP_TEMPORARY_OPTIMIZERS) or c.offload != "none":
        return 0.0
    temp = sb.state * ms.trainable
    return temp / c.dp if states.sharded(c.zero)["optimizer"] else temp


def optimizer_in_backward(shape: ModelShape, c, prof: Profile, sb: StateBytes, rp: StageParams,
                          ms: ModelStates) -> tuple[ModelStates, float]:
    """torchtune ``optimizer_in_bwd`` (OptimizerInBackward: a post-accumulate-grad hook per parameter runs that
    parameter's step and zero_grad, training/memory.py @ torchtune bd2a0fc; docs/memory.md §7.3): no gradient buffer for
    the model. Alive in backward: the largest parameter's gradient in flight, plus a tied embedding's gradient, which
    waits from the head's backward (first) to the embedding's (last); the step temporary is one parameter's state.
    Sharded over dp under ZeRO-3 (FSDP). Returns (the states with those gradients, the temporary)."""
    emb = shape.vocab * shape.d_model / c.tp
    lin = max(i * o for i, o in shape.linear_shapes().values()) / c.tp
    tied = emb if shape.tied_embeddings and rp.emb and c.pp == 1 else 0.0
    untied = emb if (rp.emb or rp.head) and not tied else 0.0
    largest = max(lin, untied, tied)
    div = c.dp if c.zero == 3 else 1
    grads = sb.grad * (tied + max(lin, untied)) / div
    temp = sb.state * largest / div if prof.opt_temp and c.optimizer in states.STEP_TEMPORARY_OPTIMIZERS else 0.0
    return ModelStates(ms.weights, grads, ms.optimizer, ms.params, ms.trainable, ms.cpu), temp


# ---------------------------------------------------------------------------- 5b. FP8 weight copies (§13)
def fp8_gemm_weights(shape: ModelShape, c) -> float:
    """Weight elements of the FP8 GEMMs on one rank: the layer linears (q, k, v, o and the MLP; the local experts
    E/ep under EP), (L/p)·Σ in·out / t. The embedding, the LM head and the router stay 16-bit (Megatron's output
    layer is a non-TE ColumnParallelLinear unless MXFP8 fp8_output_proj; docs/memory.md §13.1)."""
    lin = shape.linear_shapes()
    attn = sum(i * o for k, (i, o) in lin.items() if k in ("q", "k", "v", "o"))
    mlp = sum(i * o for k, (i, o) in lin.items() if k in ("gate", "up", "down"))
    experts = shape.n_experts / c.ep + shape.shared_experts if shape.n_experts else 1
    return shape.n_layers // c.pp * (attn + experts * mlp) / c.tp


def fp8_weight_copies(shape: ModelShape, c) -> float:
    """Precision fp8: Transformer Engine's cached FP8 copy of every FP8-GEMM weight, row-wise + transpose,
    states.FP8_WEIGHT_COPY_BYTES (2 B) × :func:`fp8_gemm_weights`; kept across micro-batches and steps, so alive in
    every phase, and not sharded by ZeRO (docs/memory.md §13.1). 0 otherwise."""
    if not states.PRECISIONS[c.precision].fp8:
        return 0.0
    return states.FP8_WEIGHT_COPY_BYTES * fp8_gemm_weights(shape, c)


# ---------------------------------------------------------------------------- 6. phases and the peak
def grads_alive_in_forward(c, prof: Profile) -> bool:
    """Gradients occupy memory during the forward pass with a persistent gradient buffer or gradient accumulation."""
    return prof.grads_persistent or c.grad_accum > 1


@dataclass(frozen=True)
class StagePeak:
    label: str  # "first" or "last" pipeline stage
    peak: float  # bytes allocated at the peak phase
    phase: str
    phases: dict[str, float]
    breakdown: dict[str, float]  # weights, gradients, optimizer, activations, logits, buffers (+ fp8_weights)
    states: ModelStates
    paged: float = 0.0  # optimizer bytes in CUDA unified memory (paged optimizers), inside ``peak`` and ``optimizer``


def phases(c, prof: Profile, ms: ModelStates, act: float, logits: float, one_layer: float, buf_fwd: float,
           buf_bwd: float, temp: float, fp8_w: float = 0.0) -> dict[str, dict[str, float]]:
    """Components alive at the end of forward, the end of backward and the optimizer step (docs/memory.md §7).
    ``act`` and ``logits`` are the stage's activation and logit bytes before the profile's activation factor;
    ``fp8_w`` the cached FP8 weight copies, alive in every phase and shown as ``fp8_weights`` under precision fp8
    only (§13)."""
    f = prof.activation_factor
    W, G, O = ms.weights, ms.gradients, ms.optimizer
    out = {
        "forward_end": {"weights": W, "gradients": G if grads_alive_in_forward(c, prof) else 0.0, "optimizer": O,
                        "activations": act * f, "logits": logits * f, "buffers": buf_fwd},
        "backward_end": {"weights": W, "gradients": G, "optimizer": O, "activations": one_layer * f,
                         "logits": 0.0, "buffers": buf_bwd},
        "optimizer_step": {"weights": W, "gradients": G, "optimizer": O, "activations": 0.0, "logits": 0.0,
                           "buffers": temp},
    }
    if states.PRECISIONS[c.precision].fp8:
        for comp in out.values():
            comp["fp8_weights"] = fp8_w
    return out


def stage_peak(shape: ModelShape, c, prof: Profile, label: str, rp: StageParams, act: float, logits: float,
               one_layer: float, sb: StateBytes, lora_params: float) -> StagePeak:
    """The peak of one pipeline stage: model states, offload, buffers, phases; the largest phase wins."""
    ms = offload_states(model_states(shape, c, sb, rp, lora_params), c, prof)
    buf_fwd = autocast_copies(shape, c, rp) + zero3_gather_forward(shape, c, sb) + qlora_dequant_buffer(shape, c)
    buf_bwd = (buf_fwd + zero3_gather_backward(shape, c, sb) + ddp_bucket_copy(c, prof, ms)
               + deepspeed_buckets(c, prof, sb, ms))
    buf_fwd += kbit_head_cast_copy(shape, c, prof, label == "last" or c.pp == 1)  # freed in the head's backward
    temp = optimizer_step_temporary(c, prof, sb, ms)
    if c.optimizer_in_bwd:  # the steps run in backward: in-flight gradients, one parameter's temporary (§7.3)
        ms, step_temp = optimizer_in_backward(shape, c, prof, sb, rp, ms)
        buf_bwd, temp = buf_bwd + step_temp, 0.0
    by_phase = phases(c, prof, ms, act, logits, one_layer, buf_fwd, buf_bwd, temp, fp8_weight_copies(shape, c))
    totals = {k: sum(v.values()) for k, v in by_phase.items()}
    peak = max(totals, key=totals.get)
    return StagePeak(label, totals[peak], peak, totals, by_phase[peak], ms)


def train_peak(shape: ModelShape, c, prof: Profile) -> tuple[StagePeak, StateBytes, set[str]]:
    """The larger of the first and last pipeline stage's peaks (one stage when p = 1), the bytes per parameter used
    and the LoRA-adapted linears."""
    trainable, adapted = linear_sets(shape, c)
    first_p, last_p = stage_params(shape, c)
    sb = state_bytes(shape, c, prof)
    lora = lora_params_on_rank(shape, c, adapted)
    act_first, act_last, logits, one_layer = activations.activation_terms(shape, c, prof, trainable, adapted)
    stages = [stage_peak(shape, c, prof, "first", first_p, act_first, 0.0 if c.pp > 1 else logits, one_layer, sb,
                         lora)]
    if c.pp > 1:
        stages.append(stage_peak(shape, c, prof, "last", last_p, act_last, logits, one_layer, sb, lora))
    best = max(stages, key=lambda st: st.peak)
    return replace(best, paged=paged_optimizer_bytes(shape, c, best.states, adapted)), sb, adapted
