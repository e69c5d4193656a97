"""Per-GPU training (and inference) memory at the peak, as a breakdown.

Model states (bytes per parameter; docs/memory.md §1):

==================  ======  =====  ==============================  =====
precision           weight  grad   optimizer (master + Adam m, v)  total
==================  ======  =====  ==============================  =====
fp32                4       4      8                               16
amp (autocast)      4       4      8 (+2 B/param cast copies)      16
mixed               2       2      4 + 8 (ZeRO paper's K = 12)     16
mixed-fp32-grads    2       4      4 + 8 (Megatron default)        18
bf16 / fp16 (pure)  2       2      4 (states in 16 bit)            8
==================  ======  =====  ==============================  =====

Sharding over the data-parallel group d (after TP/PP division): ZeRO-1 shards the optimizer, ZeRO-2 also the grads,
ZeRO-3 (FSDP FULL_SHARD) also the weights, plus gather buffers.

Activations are counted tensor by tensor (what autograd saves), generalising Korthikanti et al. 2022 to GQA, gated
MLPs, no dropout, flash attention and LoRA; the software stack (``framework``) decides the facts that differ between
implementations (see :data:`PROFILES`). The peak is the largest of three phases — end of forward (activations alive),
end of backward (all gradients alive), optimizer step (optimizer temporaries) — not the sum of every term.

Units: bytes internally; reported in GiB (2**30). ``peak_kind``: ``allocated`` (torch.cuda.max_memory_allocated),
``reserved`` (+ allocator fragmentation), ``device`` (+ CUDA context; what nvidia-smi shows; the fit check uses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import ScalePlanError
from .model import LINEARS, ModelShape
from .units import GIB

PRECISIONS = {  # weight, grad, master, optimizer-state dtype bytes, activation bytes
    "fp32": (4, 4, 0, 4, 4),
    "amp": (4, 4, 0, 4, 2),
    "mixed": (2, 2, 4, 4, 2),
    "mixed-fp32-grads": (2, 4, 4, 4, 2),
    "bf16": (2, 2, 0, 2, 2),
    "fp16": (2, 2, 0, 2, 2),
}
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "sgd", "sgd-momentum", "lion", "adafactor")
ZERO_ALIASES = {"0": 0, "1": 1, "2": 2, "3": 3, "no_shard": 0, "ddp": 0, "shard_grad_op": 2, "full_shard": 3,
                "hybrid_shard": 3, "fsdp": 3, "none": 0}
RECOMPUTE = ("none", "selective", "full")
METHODS = ("full", "lora", "qlora")
FRAMEWORKS = ("generic", "hf", "torchtune", "megatron", "deepspeed")
PEAK_KINDS = ("allocated", "reserved", "device")
NF4_DQ_BYTES = 0.5 + 0.127 / 8  # QLoRA §3: 4-bit weights + 0.127 bits/param of double-quantised constants
BNB_8BIT_STATE = 1 + 4 / 256  # bitsandbytes: uint8 state + fp32 absmax per 256-element block


@dataclass(frozen=True)
class Profile:
    """Facts about one software stack that change what is stored and in which dtype. Each is from that project's
    code or docs; none is a fitted factor."""

    name: str
    default_precision: str
    norm_extra_bytes: float  # extra bytes per norm-input element saved beyond the activation dtype
    gated_mlp_saved: int  # (s,b,ffn) tensors a gated MLP saves with all its linears trainable
    logits_bytes: float  # bytes per logit element (s·b·V) alive at the start of backward
    eager_score_bytes: float  # bytes per attention-score element (a·s²·b) saved by eager attention
    adapter_bytes: tuple[float, float, float]  # LoRA adapter weight, grad, optimizer bytes/param (AdamW)
    opt_temp: bool  # optimizer step allocates a temporary of one state's size (PyTorch foreach AdamW)
    grads_persistent: bool  # gradient buffers stay allocated between steps
    ddp_bucket_copy: bool  # DDP copies gradients into separate buckets (gradient_as_bucket_view=False)
    ds_buckets: bool  # DeepSpeed ZeRO reduce / all-gather buckets (5e8 elements each by default)
    fp32_grad_partition: bool  # ZeRO optimizer keeps an fp32 copy of its gradient partition
    activation_factor: float  # multiplier on activations for temporaries, where the project's estimator uses one
    notes: tuple[str, ...]


def _applicable_notes(notes, c) -> list[str]:
    """The profile notes that apply to this configuration (no LoRA note on a full fine-tune, no eager-attention
    note under flash attention)."""
    out = []
    for n in notes:
        if ("LoRA" in n or "adapters" in n) and c.method == "full":
            continue
        if "eager attention" in n and c.attention != "eager":
            continue
        out.append(n)
    return out


PROFILES = {
    "generic": Profile(
        "generic", "mixed", 0.0, 4, 8.0, 2.0, (4, 4, 8), True, False, False, False, False, 1.0,
        ("fused norms save their input in the activation dtype",
         "gated MLP saves gate output, SiLU output, up output and their product (4 x s·b·ffn)",
         "loss on fp32 logits: fp32 log-probs saved + fp32 gradient at the start of backward (8 B per logit)",
         "LoRA adapters kept in fp32 (PEFT autocast_adapter_dtype default)",
         "PyTorch foreach AdamW allocates one state-sized temporary at the step")),
    "hf": Profile(
        "hf", "amp", 4.0, 4, 12.0, 6.0, (4, 4, 8), True, False, True, False, False, 1.0,
        ("transformers' RMSNorm upcasts to fp32: saves the fp32 input (4 B) and the 16-bit normalised output",
         "Trainer --bf16 is torch autocast over fp32 weights (precision amp)",
         "ForCausalLMLoss upcasts logits to fp32: saved fp32 log-probs + fp32 grad of log-probs + fp32 grad of "
         "logits coexist in cross-entropy backward (12 B per logit)",
         "eager attention: fp32 softmax + 16-bit copy saved (6 B per score)",
         "PEFT keeps LoRA adapters in fp32 (autocast_adapter_dtype=True)",
         "DDP copies gradients into buckets (gradient_as_bucket_view=False by default)")),
    "torchtune": Profile(
        "torchtune", "bf16", 4.0, 4, 6.0, 2.0, (2, 2, 4), True, False, False, False, False, 1.0,
        ("RMSNorm computed in fp32: saves the fp32 input and the bf16 output",
         "recipes train in pure bf16 (weights, grads and AdamW states bf16), adapters bf16",
         "CEWithChunkedOutputLoss: bf16 logits kept (2 B) + fp32 log-probs (4 B) per logit",
         "full-finetune recipes default to torch AdamW (foreach)")),
    "megatron": Profile(
        "megatron", "mixed-fp32-grads", 0.0, 3, 2.0, 2.0, (4, 4, 8), False, True, False, False, False, 1.05,
        ("Transformer Engine fused LayerNorm/RMSNorm saves its 16-bit input",
         "fused SwiGLU saves fc1 output (2 x s·b·ffn) and the product (1 x)",
         "logits counted at 2 B per element, vocab-parallel (theoretical_memory_usage.py)",
         "contiguous fp32 main-grad buffer, always allocated; fused Adam (no step temporaries)",
         "activations x1.05 for temporaries, as Megatron's theoretical_memory_usage.py")),
    "deepspeed": Profile(
        "deepspeed", "mixed", 4.0, 4, 12.0, 6.0, (4, 4, 8), False, True, False, True, True, 1.0,
        ("models are Hugging Face transformers (fp32 RMSNorm, fp32 loss)",
         "ZeRO optimizer keeps an fp32 copy of its gradient partition (stage_1_and_2.py: 2 + 2 + 16 B/param)",
         "reduce and all-gather buckets of 5e8 elements each (DeepSpeed defaults)",
         "fused Adam (no step temporaries)")),
}


@dataclass(frozen=True)
class MemoryConfig:
    """Everything that decides per-GPU memory besides the model shape. Defaults: one GPU, mixed precision AdamW,
    seq 4096, micro-batch 1, flash attention, no recompute, full fine-tune, generic stack."""

    precision: str | None = None  # None: the framework's default
    optimizer: str = "adamw"
    zero: int = 0
    gpus: int = 1
    tp: int = 1
    pp: int = 1
    dp: int | None = None
    sp: bool = False
    offload: str = "none"
    seq_len: int = 4096
    micro_batch: int = 1
    grad_accum: int = 1
    recompute: str = "none"
    attention: str = "flash"
    chunked_ce: bool = False
    dropout: float = 0.0
    method: str = "full"
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
    lora_dtype: str | None = None  # None: the framework's default
    lora_dropout: float = 0.0
    framework: str = "generic"
    cuda_context_gib: float = 1.0
    fragmentation: float = 0.05
    peak_kind: str = "device"
    inference: bool = False
    batch: int = 1
    context: int | None = None

    def resolved(self) -> MemoryConfig:
        prof = profile(self.framework)
        c = self
        if c.precision is None:
            c = replace(c, precision=prof.default_precision)
        if c.dp is None:
            if c.gpus % (c.tp * c.pp):
                raise ScalePlanError(f"--gpus {c.gpus} is not divisible by tp·pp = {c.tp * c.pp}")
            c = replace(c, dp=c.gpus // (c.tp * c.pp))
        return c


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ScalePlanError(f"--framework must be one of {', '.join(FRAMEWORKS)}, got {name!r}")
    return PROFILES[name]


def parse_zero(value: str | int) -> int:
    key = str(value).strip().lower().replace("-", "_")
    if key not in ZERO_ALIASES:
        raise ScalePlanError(f"--zero must be 0, 1, 2, 3 or an FSDP name (no_shard, shard_grad_op, full_shard, "
                             f"hybrid_shard), got {value!r}")
    return ZERO_ALIASES[key]


def parse_targets(text: str, shape: ModelShape | None = None) -> tuple[str, ...]:
    aliases = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
               "down_proj": "down", "w1": "gate", "w3": "up", "w2": "down", "output_proj": "o"}
    if text.strip().lower() in ("all", "all-linear", "all_linear"):
        return LINEARS
    out = []
    for t in text.split(","):
        t = aliases.get(t.strip(), t.strip())
        if t not in LINEARS:
            raise ScalePlanError(f"--lora-targets: unknown module {t!r}; use q,k,v,o,gate,up,down or all-linear")
        out.append(t)
    return tuple(dict.fromkeys(out))


def validate(shape: ModelShape, c: MemoryConfig) -> None:
    if c.context is not None and (not isinstance(c.context, int) or c.context <= 0):
        raise ScalePlanError(f"--context must be a positive integer, got {c.context}")
    for f in ("gpus", "tp", "pp", "seq_len", "micro_batch", "grad_accum", "batch"):
        v = getattr(c, f)
        if not isinstance(v, int) or v <= 0:
            raise ScalePlanError(f"--{f.replace('_', '-')} must be a positive integer, got {v}")
    if c.precision not in PRECISIONS:
        raise ScalePlanError(f"--precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")
    if c.optimizer not in OPTIMIZERS:
        raise ScalePlanError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {c.optimizer!r}")
    if c.recompute not in RECOMPUTE:
        raise ScalePlanError(f"--recompute must be one of {', '.join(RECOMPUTE)}")
    if c.attention not in ("flash", "eager"):
        raise ScalePlanError("--attention must be flash or eager")
    if c.method not in METHODS:
        raise ScalePlanError(f"--method must be one of {', '.join(METHODS)}")
    if c.peak_kind not in PEAK_KINDS:
        raise ScalePlanError(f"--peak-kind must be one of {', '.join(PEAK_KINDS)}")
    if c.offload not in ("none", "optimizer", "params"):
        raise ScalePlanError("--offload must be none, optimizer or params")
    if c.offload != "none" and c.zero == 0:
        raise ScalePlanError("--offload needs ZeRO (DeepSpeed ZeRO-Offload): add --zero 2 (or 3)")
    if c.offload == "params" and c.zero != 3:
        raise ScalePlanError("--offload params needs --zero 3 (parameters are only partitioned in stage 3)")
    if c.tp * c.pp * c.dp != c.gpus:
        raise ScalePlanError(f"tp·pp·dp = {c.tp}·{c.pp}·{c.dp} = {c.tp * c.pp * c.dp} must equal --gpus {c.gpus}")
    if shape.n_heads % c.tp or shape.n_kv_heads % c.tp and c.tp % shape.n_kv_heads:
        raise ScalePlanError(f"--tp {c.tp} must divide the {shape.n_heads} attention heads "
                             f"(and the {shape.n_kv_heads} KV heads, or be a multiple of them)")
    if shape.n_layers % c.pp:
        raise ScalePlanError(f"--pp {c.pp} must divide the {shape.n_layers} layers")
    if c.method != "full" and c.lora_rank <= 0:
        raise ScalePlanError("--lora-rank must be a positive integer")
    if not (0 <= c.dropout < 1 and 0 <= c.lora_dropout < 1):
        raise ScalePlanError("--dropout and --lora-dropout must be in [0, 1)")
    if c.fragmentation < 0 or c.cuda_context_gib < 0:
        raise ScalePlanError("--fragmentation and --cuda-context-gib must be >= 0")


# ----------------------------------------------------------------------------------------------- counts
def lora_params_per_layer(shape: ModelShape, rank: int, targets) -> int:
    """r·(in + out) per adapted linear (MoE: per expert). PEFT's count for q,v on Llama-3.2-3B r=32 is 9,175,040."""
    mult = shape.n_experts or 1
    total = 0
    for name, (i, o) in shape.linear_shapes().items():
        if name in targets:
            total += rank * (i + o) * (mult if name in ("gate", "up", "down") else 1)
    return total


def _optimizer_bytes(c: MemoryConfig, shape: ModelShape, state_b: float, n_params: float) -> float:
    """Optimizer state bytes per parameter (excluding the fp32 master copy)."""
    if c.optimizer == "adamw":
        return 2 * state_b
    if c.optimizer in ("adamw-8bit", "paged-adamw-8bit"):
        return 2 * BNB_8BIT_STATE
    if c.optimizer == "sgd":
        return 0.0
    if c.optimizer in ("sgd-momentum", "lion"):
        return state_b
    # adafactor (no momentum, HF default): factored second moment, rows + cols per matrix
    per_layer = sum(i + o for i, o in shape.linear_shapes().values())
    matrices = per_layer * shape.n_layers + shape.vocab + shape.d_model
    return state_b * matrices / max(n_params, 1.0)


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU bytes at the peak, by component, with every assumption used."""

    shape: ModelShape
    config: MemoryConfig
    breakdown: dict[str, float]  # bytes: weights, gradients, optimizer, activations, logits, buffers, overhead
    allocated: float
    reserved: float
    device: float
    cpu_bytes: float
    params_total: int
    params_trainable: int
    params_active: int
    phases: dict[str, float]
    peak_phase: str
    rank: str
    assumptions: dict
    gpu_name: str | None = None
    gpu_memory_gib: float | None = None
    suggestions: tuple[dict, ...] = field(default=())

    @property
    def total(self) -> float:
        """Bytes of the requested peak kind."""
        return {"allocated": self.allocated, "reserved": self.reserved, "device": self.device}[self.config.peak_kind]

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    @property
    def fits(self) -> bool | None:
        return None if self.gpu_memory_gib is None else self.device / GIB <= self.gpu_memory_gib

    def headroom_gib(self) -> float | None:
        return None if self.gpu_memory_gib is None else self.gpu_memory_gib - self.device / GIB

    def to_dict(self) -> dict:
        per = {k: round(v / GIB, 4) for k, v in self.breakdown.items()}
        per["total"] = round(self.total / GIB, 4)
        return {"params_total": self.params_total, "params_trainable": self.params_trainable,
                "params_active": self.params_active, "per_gpu_gib": per,
                "peak_kind": self.config.peak_kind,
                "allocated_gib": round(self.allocated / GIB, 4), "reserved_gib": round(self.reserved / GIB, 4),
                "device_gib": round(self.device / GIB, 4), "cpu_gib": round(self.cpu_bytes / GIB, 4),
                "gpu": self.gpu_name, "gpu_memory_gib": None if self.gpu_memory_gib is None
                else round(self.gpu_memory_gib, 3), "fits": self.fits,
                "headroom_gib": None if self.gpu_memory_gib is None else round(self.headroom_gib(), 3),
                "peak_phase": self.peak_phase, "phases_gib": {k: round(v / GIB, 4) for k, v in self.phases.items()},
                "rank": self.rank, "assumptions": self.assumptions, "model": self.shape.describe(),
                "suggestions": list(self.suggestions)}


# ----------------------------------------------------------------------------------------------- activations
def layer_activation_bytes(shape: ModelShape, c: MemoryConfig, prof: Profile, trainable: set[str],
                           adapted: set[str]) -> float:
    """Bytes saved for backward by one transformer layer for one micro-batch, on one TP rank (no recompute)."""
    s, b, h, f, t = c.seq_len, c.micro_batch, shape.d_model, shape.ffn, c.tp
    e = PRECISIONS[c.precision][4]
    sb = s * b
    needs = trainable | adapted
    rep = 0.0  # replicated across TP ranks unless sequence parallel
    split = 0.0  # divided by TP
    norm_b = e + prof.norm_extra_bytes
    rep += shape.norms_per_layer * norm_b * sb * h
    if needs & {"q", "k", "v"}:
        rep += e * sb * h  # attention input (norm output), saved by the QKV projections / LoRA A
    if needs & {"gate", "up"}:
        rep += e * sb * h  # MLP input
    if c.dropout > 0:
        rep += 2 * sb * h  # two residual dropout masks (1 byte)
    # attention: q, k, v saved by the attention kernel, output saved by it and by o_proj
    split += e * sb * (shape.q_width + 2 * shape.kv_width) + e * sb * shape.q_width
    if c.attention == "flash":
        split += 4 * shape.n_heads * sb  # fp32 log-sum-exp
    elif c.recompute == "none":  # eager: s^2 score tensors (selective recompute drops them)
        per = prof.eager_score_bytes + ((1 + e) if c.dropout > 0 else 0)
        split += per * shape.n_heads * s * s * b
    k = shape.top_k if shape.n_experts else 1
    if shape.gated_mlp:
        n_f = prof.gated_mlp_saved - (0 if "down" in needs else 1)
        # frozen gate/up in a Megatron-style fused kernel still keep fc1 output for the activation backward
    else:
        n_f = 1 + (1 if "down" in needs else 0)
    split += k * n_f * e * sb * f
    # LoRA intermediates: A outputs (and dropout copies of A's input when lora_dropout > 0)
    lin = shape.linear_shapes()
    for name in adapted:
        i, _o = lin[name]
        mult = k if name in ("gate", "up", "down") else 1
        split += mult * e * sb * c.lora_rank
        if c.lora_dropout > 0:
            split += mult * (e + 1) * sb * i
    return rep / (t if c.sp else 1) + split / t


def activation_terms(shape: ModelShape, c: MemoryConfig, prof: Profile, trainable, adapted):
    """Per-rank activation bytes (first stage, last stage) and logits bytes (last stage), plus one layer's set."""
    e = PRECISIONS[c.precision][4]
    s, b, h, t = c.seq_len, c.micro_batch, shape.d_model, c.tp
    per_layer = layer_activation_bytes(shape, c, prof, trainable, adapted)
    Lp = shape.n_layers // c.pp
    if c.recompute == "full":
        stored = e * s * b * h / (t if c.sp else 1)
        layers = Lp * stored + per_layer  # checkpoints + one layer rematerialised during its backward
    else:
        layers = Lp * per_layer
    in_flight = min(c.pp, max(c.grad_accum, 1)) if c.pp > 1 else 1  # 1F1B: first stage holds p micro-batches
    emb = (s * b * h if c.dropout > 0 else 0) / (t if c.sp else 1)
    first = in_flight * (layers + emb)
    head_trainable = c.method == "full"
    final = (e + prof.norm_extra_bytes) * s * b * h + (e * s * b * h if head_trainable else 0)
    final /= (t if c.sp else 1)
    logit_b = 0.5 if c.chunked_ce else prof.logits_bytes
    logits = logit_b * s * b * shape.vocab / t
    last = layers + final
    return first, last, logits, per_layer


# ----------------------------------------------------------------------------------------------- estimate
def estimate_memory(shape: ModelShape, config: MemoryConfig | None = None, gpu=None,
                    suggest: bool = True) -> MemoryEstimate:
    """Estimate per-GPU peak memory for training (or inference with ``config.inference``)."""
    c = (config or MemoryConfig()).resolved()
    validate(shape, c)
    prof = profile(c.framework)
    if c.inference:
        est = _inference(shape, c, gpu)
    else:
        est = _training(shape, c, prof, gpu)
    if suggest and est.fits is False:
        est = replace(est, suggestions=tuple(_suggestions(shape, c, gpu, est)))
    return est


def _rank_params(shape: ModelShape, c: MemoryConfig):
    """Parameters held by the first and last pipeline stage of one TP rank, split into
    (linear/TP-split block params, replicated norm params, embedding, lm head)."""
    t, p = c.tp, c.pp
    Lp = shape.n_layers // p
    norm_layer = shape.norms_per_layer * shape._norm_params()
    router = shape.d_model * shape.n_experts if shape.n_experts else 0
    block_split = Lp * (shape.layer_params() - norm_layer - router) / t
    block_rep = Lp * (norm_layer + router)
    emb = shape.vocab * shape.d_model / t + shape.learned_pos * shape.d_model
    head = shape.vocab * shape.d_model / t  # untied head, or the tied copy on the last stage when p > 1
    final_norm = shape._norm_params() + shape.extra_params
    first = {"split": block_split, "rep": block_rep, "emb": emb, "head": 0.0, "norm": 0.0}
    last = {"split": block_split, "rep": block_rep, "emb": 0.0, "head": head, "norm": final_norm}
    if p == 1:
        first = {"split": block_split, "rep": block_rep, "emb": emb,
                 "head": 0.0 if shape.tied_embeddings else head, "norm": final_norm}
        last = first
    elif shape.tied_embeddings:
        last["head"] = head
    return first, last


def _training(shape: ModelShape, c: MemoryConfig, prof: Profile, gpu) -> MemoryEstimate:
    w_b, g_b, master_b, state_b, e = PRECISIONS[c.precision]
    if c.method != "full" and c.precision == "amp":
        w_b = 2  # LoRA recipes load the frozen base in 16 bit; autocast then has nothing to cast
    d = c.dp
    z = c.zero
    full = c.method == "full"
    targets = set(LINEARS if full else c.lora_targets)
    if not shape.gated_mlp:
        targets.discard("gate")
    trainable = targets if full else set()
    adapted = set() if full else targets
    first_p, last_p = _rank_params(shape, c)
    # LoRA adapter params on a rank
    Lp = shape.n_layers // c.pp
    lora_rank_params = 0.0 if full else Lp * lora_params_per_layer(shape, c.lora_rank, adapted) / c.tp
    opt_b = master_b + _optimizer_bytes(c, shape, state_b, shape.params_total)
    if prof.fp32_grad_partition and z >= 1 and g_b < 4:
        opt_b += 4
    if not full:
        a_w, a_g, a_o = prof.adapter_bytes if c.lora_dtype is None else \
            ((4, 4, 8) if c.lora_dtype == "fp32" else (2, 2, 4))
        if c.optimizer != "adamw":
            a_o = _optimizer_bytes(c, shape, a_w, shape.params_total)
    act_first, act_last, logits, one_layer = activation_terms(shape, c, prof, trainable, adapted)

    def shard(W, G, O):
        """ZeRO-1 shards the optimizer, ZeRO-2 also gradients, ZeRO-3 also weights, over the DP group."""
        return (W / d if z >= 3 else W), (G / d if z >= 2 else G), (O / d if z >= 1 else O)

    def states(rp):
        n = sum(rp.values())
        if full:
            W, G, O = shard(w_b * n, g_b * n, opt_b * n)
            trainable_n = n
        else:
            if c.method == "qlora":
                base = NF4_DQ_BYTES * rp["split"] + 2 * (rp["rep"] + rp["emb"] + rp["head"] + rp["norm"])
            else:
                base = w_b * n
            aw, ag, ao = shard(base + a_w * lora_rank_params, a_g * lora_rank_params, a_o * lora_rank_params)
            W, G, O = aw, ag, ao
            trainable_n = lora_rank_params
        return W, G, O, n, trainable_n

    ranks = {}
    for label, rp, act, lg in (("first", first_p, act_first, 0.0 if c.pp > 1 else logits),
                               ("last", last_p, act_last, logits)):
        if c.pp == 1 and label == "last":
            continue
        W, G, O, n, ntr = states(rp)
        cpu = 0.0
        if c.offload in ("optimizer", "params"):
            # ZeRO-Offload: optimizer states (with the fp32 master) and the gradient partition live on the CPU,
            # where the gradients are kept in fp32
            cpu += O + (0.0 if prof.fp32_grad_partition else 4 * ntr / d)
            O = 0.0
            G = 0.0
        if c.offload == "params":
            cpu += W
            W = 0.0
        # buffers
        buf_fwd = 0.0
        if c.precision == "amp" and full:
            buf_fwd += 2 * (rp["split"] + rp["emb"] + rp["head"])  # autocast 16-bit copies of weights, saved
        if z == 3:
            layer_n = shape.layer_params() / c.tp
            buf_fwd += (2 * (w_b if full else (NF4_DQ_BYTES if c.method == "qlora" else w_b))) * layer_n
        if c.method == "qlora":
            buf_fwd += 2 * max(i * o for i, o in shape.linear_shapes().values()) / c.tp  # dequantised weight
        buf_bwd = buf_fwd
        if z == 3:
            buf_bwd += g_b * (shape.layer_params() / c.tp if full else 0)
        if prof.ddp_bucket_copy and z == 0 and d > 1:
            buf_bwd += G
        if prof.ds_buckets and z in (1, 2):
            cap = min(5e8, ntr)
            buf_bwd += cap * g_b + min(5e8, n) * w_b
        act = (act + lg) * prof.activation_factor
        lg_f = lg * prof.activation_factor
        grads_alive = prof.grads_persistent or c.grad_accum > 1
        temp = (state_b if c.optimizer in ("adamw", "lion", "sgd-momentum") and prof.opt_temp else 0.0) * ntr
        if z >= 1:
            temp /= d
        if c.offload != "none":
            temp = 0.0
        phases = {
            "forward_end": W + O + (G if grads_alive else 0.0) + act + buf_fwd,
            "backward_end": W + O + G + one_layer * prof.activation_factor + buf_bwd,
            "optimizer_step": W + O + G + temp,
        }
        peak = max(phases, key=phases.get)
        acts_only = act - lg_f
        if peak == "forward_end":
            comp = {"weights": W, "gradients": G if grads_alive else 0.0, "optimizer": O,
                    "activations": acts_only, "logits": lg_f, "buffers": buf_fwd}
        elif peak == "backward_end":
            comp = {"weights": W, "gradients": G, "optimizer": O, "activations": one_layer * prof.activation_factor,
                    "logits": 0.0, "buffers": buf_bwd}
        else:
            comp = {"weights": W, "gradients": G, "optimizer": O, "activations": 0.0, "logits": 0.0,
                    "buffers": temp}
        ranks[label] = (phases[peak], comp, phases, peak, n, ntr, cpu, {"weights": W, "gradients": G,
                                                                         "optimizer": O})
    label = max(ranks, key=lambda k: ranks[k][0])
    alloc, comp, phases, peak, n_rank, ntr, cpu, model_states = ranks[label]
    reserved = alloc * (1 + c.fragmentation)
    ctx = c.cuda_context_gib * GIB
    device = reserved + ctx
    comp = dict(comp)
    overhead = (reserved - alloc) + ctx
    if c.peak_kind == "allocated":
        comp["overhead"] = 0.0
    elif c.peak_kind == "reserved":
        comp["overhead"] = reserved - alloc
    else:
        comp["overhead"] = overhead
    gpus_node = gpu.gpus_per_node if gpu is not None else 8
    cpu_node = cpu * min(c.gpus, gpus_node) * (1.5 if cpu else 1.0)
    params_trainable = shape.params_total if full else int(round(shape.n_layers * lora_params_per_layer(
        shape, c.lora_rank, adapted)))
    assumptions = {
        "framework": c.framework, "precision": c.precision,
        "bytes_per_param": {"weights": w_b if full else (NF4_DQ_BYTES if c.method == "qlora" else w_b),
                            "gradients": g_b if full else None, "optimizer_incl_master": opt_b if full else None,
                            "lora_adapter_w_g_opt": None if full else [a_w, a_g, a_o]},
        "activation_bytes": e, "optimizer": c.optimizer, "zero_stage": c.zero,
        "sharded": {"optimizer": c.zero >= 1, "gradients": c.zero >= 2, "weights": c.zero >= 3},
        "layout": {"gpus": c.gpus, "tp": c.tp, "pp": c.pp, "dp": c.dp, "sp": c.sp},
        "offload": c.offload, "seq_len": c.seq_len, "micro_batch": c.micro_batch, "grad_accum": c.grad_accum,
        "recompute": c.recompute, "attention": c.attention, "dropout": c.dropout, "chunked_ce": c.chunked_ce,
        "logit_bytes_per_element": 0.5 if c.chunked_ce else prof.logits_bytes,
        "method": c.method, "lora": None if full else {"rank": c.lora_rank, "targets": sorted(adapted),
                                                        "dropout": c.lora_dropout},
        "params_on_rank": int(n_rank), "trainable_on_rank": int(ntr), "reported_rank": f"{label} pipeline stage",
        "peak_phase": peak, "grads_alive_in_forward": prof.grads_persistent or c.grad_accum > 1,
        "activation_factor": prof.activation_factor,
        "model_states_gib": {k: v / GIB for k, v in model_states.items()},
        "cuda_context_gib": c.cuda_context_gib, "fragmentation": c.fragmentation, "peak_kind": c.peak_kind,
        "units": "GiB = 2^30 bytes", "profile_notes": _applicable_notes(prof.notes, c),
    }
    if c.optimizer == "paged-adamw-8bit":
        assumptions["note_paged"] = "paged optimizer states live in unified memory and can be evicted to CPU"
    return MemoryEstimate(shape=shape, config=c, breakdown=comp, allocated=alloc, reserved=reserved, device=device,
                          cpu_bytes=cpu_node, params_total=shape.params_total, params_trainable=params_trainable,
                          params_active=shape.params_active, phases=phases, peak_phase=peak,
                          rank=label, assumptions=assumptions, gpu_name=gpu.name if gpu is not None else None,
                          gpu_memory_gib=gpu.memory_gib if gpu is not None else None)


def kv_cache_bytes(shape: ModelShape, context: int, batch: int, bytes_per: float = 2.0) -> float:
    """K and V for every layer: 2·L·(kv_heads·head_dim)·context·batch·bytes (GQA-aware: kv heads, not d_model)."""
    return 2.0 * shape.n_layers * shape.kv_width * context * batch * bytes_per


def _inference(shape: ModelShape, c: MemoryConfig, gpu) -> MemoryEstimate:
    w_b = {"fp32": 4, "amp": 2}.get(c.precision, 2)
    ctx_len = c.context or c.seq_len
    if c.method == "qlora":
        lin = shape.n_layers * (shape.layer_params() - shape.norms_per_layer * shape._norm_params())
        W = NF4_DQ_BYTES * lin + 2 * (shape.params_total - lin)
    else:
        W = w_b * shape.params_total
    W /= c.tp * c.pp
    kv = kv_cache_bytes(shape, ctx_len, c.batch, w_b) / (c.tp * c.pp)
    act = w_b * c.batch * ctx_len * (2 * shape.d_model + 2 * shape.ffn) / c.tp + 4 * c.batch * shape.vocab
    comp = {"weights": W, "gradients": 0.0, "optimizer": 0.0, "activations": act, "logits": 0.0, "buffers": kv}
    alloc = sum(comp.values())
    reserved = alloc * (1 + c.fragmentation)
    device = reserved + c.cuda_context_gib * GIB
    comp["overhead"] = {"allocated": 0.0, "reserved": reserved - alloc, "device": device - alloc}[c.peak_kind]
    return MemoryEstimate(shape=shape, config=c, breakdown=comp, allocated=alloc, reserved=reserved, device=device,
                          cpu_bytes=0.0, params_total=shape.params_total, params_trainable=0,
                          params_active=shape.params_active, phases={"inference": alloc}, peak_phase="inference",
                          rank="inference", gpu_name=gpu.name if gpu is not None else None,
                          gpu_memory_gib=gpu.memory_gib if gpu is not None else None,
                          assumptions={"mode": "inference", "weight_bytes": w_b, "kv_cache_gib": kv / GIB,
                                       "kv_bytes_per_token": kv_cache_bytes(shape, 1, 1, w_b),
                                       "context": ctx_len, "batch": c.batch, "units": "GiB = 2^30 bytes",
                                       "buffers": "KV cache"})


# ----------------------------------------------------------------------------------------------- what-ifs
def max_micro_batch(shape: ModelShape, c: MemoryConfig, gpu, limit: int = 1024) -> int:
    """Largest micro-batch whose device peak fits the GPU (0 if even 1 does not)."""
    def fits(mb):
        return estimate_memory(shape, replace(c, micro_batch=mb), gpu, suggest=False).fits

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def _suggestions(shape: ModelShape, c: MemoryConfig, gpu, est: MemoryEstimate) -> list[dict]:
    cands: list[tuple[str, MemoryConfig]] = []
    if c.attention == "eager":
        cands.append(("flash attention", replace(c, attention="flash")))
    if c.recompute == "none":
        cands.append(("selective recompute", replace(c, recompute="selective")))
    if c.recompute != "full":
        cands.append(("full recompute", replace(c, recompute="full")))
    if not c.chunked_ce:
        cands.append(("chunked cross-entropy", replace(c, chunked_ce=True)))
    if c.dp > 1 and c.zero < 3:
        for zz in range(c.zero + 1, 4):
            cands.append((f"ZeRO-{zz} over {c.dp} GPUs", replace(c, zero=zz)))
    if c.optimizer == "adamw":
        cands.append(("8-bit AdamW", replace(c, optimizer="adamw-8bit")))
    if c.dp > 1 or c.gpus > 1:
        cands.append(("offload optimizer to CPU (ZeRO-2)", replace(c, offload="optimizer", zero=max(c.zero, 2))))
    if c.method == "full":
        cands.append(("LoRA r=16 (all linear)", replace(c, method="lora", lora_rank=16)))
        cands.append(("QLoRA r=16 (all linear)", replace(c, method="qlora", lora_rank=16)))
    if c.method == "lora":
        cands.append((f"QLoRA r={c.lora_rank}", replace(c, method="qlora")))
    for g in (2, 4, 8, 16, 32, 64, 128, 256):
        if g > c.gpus and g % (c.tp * c.pp) == 0:
            cc = replace(c, gpus=g, dp=g // (c.tp * c.pp), zero=3)
            try:
                ok = estimate_memory(shape, cc, gpu, suggest=False).fits
            except ScalePlanError:
                continue
            if ok or g == 256:
                cands.append((f"ZeRO-3 over {g} GPUs", cc))
                break
    for t in (2, 4, 8):
        if t > c.tp and shape.n_heads % t == 0 and (t * c.pp) <= max(c.gpus, 8):
            g = max(c.gpus, t * c.pp)
            if g % (t * c.pp) == 0:
                cands.append((f"TP={t} on {g} GPUs", replace(c, tp=t, gpus=g, dp=g // (t * c.pp))))
                break
    if c.micro_batch > 1:
        cands.append(("micro-batch 1", replace(c, micro_batch=1)))
    out = []
    for label, cc in cands:
        try:
            e2 = estimate_memory(shape, cc, gpu, suggest=False)
        except ScalePlanError:
            continue
        out.append({"change": label, "total_gib": round(e2.device / GIB, 2), "fits": bool(e2.fits),
                    "breakdown_gib": {k: round(v / GIB, 3) for k, v in e2.breakdown.items()}})
    if c.micro_batch > 1:
        mb = max_micro_batch(shape, c, gpu, limit=c.micro_batch)
        if mb:
            e2 = estimate_memory(shape, replace(c, micro_batch=mb), gpu, suggest=False)
            out.append({"change": f"max micro-batch that fits: {mb}", "total_gib": round(e2.device / GIB, 2),
                        "fits": True, "breakdown_gib": {k: round(v / GIB, 3) for k, v in e2.breakdown.items()}})
    fitting = [o for o in out if o["fits"]]
    return fitting[:6] if fitting else sorted(out, key=lambda o: o["total_gib"])[:3]


__all__ = ["MemoryConfig", "MemoryEstimate", "estimate_memory", "PROFILES", "kv_cache_bytes",
           "lora_params_per_layer", "max_micro_batch", "parse_zero", "parse_targets"]
