"""MemoryConfig: everything besides the model shape that decides per-GPU memory, its choices and its validation.

Errors name the keyword arguments as a library caller writes them (``tp 3 must divide ...``) and set ``param`` so the
CLI can show its flag (errors.ScalePlanError.for_cli).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ScalePlanError
from ..model import ModelShape
from .profiles import FRAMEWORKS, profile
from .states import OPTIMIZERS, PRECISIONS

ZERO_STAGES = (0, 1, 2, 3)
RECOMPUTE = ("none", "selective", "full")
ATTENTIONS = ("flash", "eager")
METHODS = ("full", "lora", "qlora")
LORA_DTYPES = ("fp32", "bf16")
OFFLOADS = ("none", "optimizer", "params")
PEAK_KINDS = ("allocated", "reserved", "device")
FP8_FRAMEWORKS = ("megatron",)  # stacks whose profile runs Transformer Engine FP8 GEMMs (docs/memory.md §13.4)

__all__ = ["MemoryConfig", "validate", "ZERO_STAGES", "RECOMPUTE", "ATTENTIONS", "METHODS", "LORA_DTYPES", "OFFLOADS",
           "PEAK_KINDS", "FRAMEWORKS", "OPTIMIZERS", "FP8_FRAMEWORKS"]


@dataclass(frozen=True)
class MemoryConfig:
    """Everything that decides per-GPU memory besides the model shape. Defaults: one GPU, the framework's precision,
    AdamW, seq 4096, micro-batch 1, flash attention, no recompute, full fine-tune, the hf stack
    (transformers + PEFT). Sizes in tokens and
    sequences; ``cuda_context_gib`` in GiB; ``fragmentation`` a fraction of allocated memory."""

    precision: str | None = None  # None: the framework's default (profiles.Profile.default_precision)
    optimizer: str = "adamw"
    zero: int = 0  # ZeRO stage 0-3 (docs/memory.md §2)
    gpus: int = 1
    tp: int = 1
    pp: int = 1
    dp: int | None = None  # None: gpus / (tp·pp)
    ep: int = 1  # expert parallelism (MoE): experts split over ep ranks of the data-parallel group
    sp: bool = False
    offload: str = "none"
    seq_len: int = 4096
    micro_batch: int = 1
    grad_accum: int = 1
    recompute: str = "none"
    attention: str = "flash"
    chunked_ce: bool = False
    optimizer_in_bwd: bool = False  # torchtune: each parameter's step in its grad hook, its gradient freed (§7.3)
    activation_offload: bool = False  # torchtune OffloadActivations: full-recompute checkpoints kept in CPU RAM (§4.3)
    dropout: float = 0.0
    method: str = "full"
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
    lora_dtype: str | None = None  # None: the framework's default (Profile.adapter_bytes)
    lora_dropout: float = 0.0
    framework: str = "hf"  # DEFAULT_FRAMEWORK: a measured stack (docs/memory.md §11.2); the planner passes megatron
    cuda_context_gib: float = 1.0
    fragmentation: float = 0.05
    peak_kind: str = "device"
    inference: bool = False
    batch: int = 1
    context: int | None = None

    def resolved(self) -> MemoryConfig:
        """This config with the framework's precision and dp = gpus/(tp·pp) filled in where not given."""
        prof = profile(self.framework)
        c = self
        if c.precision is None:
            c = replace(c, precision=prof.default_precision)
        if c.dp is None:
            for f in ("gpus", "tp", "pp"):
                _positive_int(c, f)
            if c.gpus % (c.tp * c.pp):
                raise ScalePlanError(f"gpus {c.gpus} is not divisible by tp·pp = {c.tp * c.pp}", param="gpus")
            c = replace(c, dp=c.gpus // (c.tp * c.pp))
        return c


def _positive_int(c: MemoryConfig, f: str) -> None:
    v = getattr(c, f)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ScalePlanError(f"{f} must be a positive integer, got {v}", param=f)


def _one_of(c: MemoryConfig, f: str, choices) -> None:
    v = getattr(c, f)
    if v not in choices:
        raise ScalePlanError(f"{f} must be one of {', '.join(map(str, choices))}, got {v!r}", param=f)


def _check_fp8(c: MemoryConfig) -> None:
    """precision fp8 is Transformer Engine FP8 as Megatron-Core runs it, for full training (docs/memory.md §13.4)."""
    if c.framework not in FP8_FRAMEWORKS:
        raise ScalePlanError(f"precision fp8 (Transformer Engine FP8 GEMMs) needs framework megatron; {c.framework} "
                             f"does not run FP8 GEMMs: use framework megatron, or drop fp8 for {c.framework}'s "
                             f"default {profile(c.framework).default_precision}", param=("precision", "framework"))
    if c.inference:
        raise ScalePlanError("precision fp8 is a training precision (FP8 GEMMs with bf16 weights): drop it for "
                             "inference, which counts 16-bit weights", param=("precision", "inference"))
    if c.method != "full":
        raise ScalePlanError(f"precision fp8 is modelled for full training; method {c.method} is not: use method "
                             "full, or precision mixed-fp32-grads for LoRA/QLoRA", param=("precision", "method"))


def validate(shape: ModelShape, c: MemoryConfig) -> None:
    """Raise ScalePlanError (naming the keyword, ``param`` set) unless ``c`` (resolved) is a valid config for
    ``shape``."""
    if c.context is not None:
        _positive_int(c, "context")
    for f in ("gpus", "tp", "pp", "dp", "ep", "seq_len", "micro_batch", "grad_accum", "batch"):
        _positive_int(c, f)
    if c.ep > 1 and (not shape.n_experts or shape.n_experts % c.ep or c.dp % c.ep):
        raise ScalePlanError(f"ep {c.ep} needs an MoE model whose experts ({shape.n_experts}) and dp ({c.dp}) it "
                             "divides", param="ep")
    _one_of(c, "precision", tuple(PRECISIONS))
    _one_of(c, "optimizer", OPTIMIZERS)
    _one_of(c, "zero", ZERO_STAGES)
    _one_of(c, "recompute", RECOMPUTE)
    _one_of(c, "attention", ATTENTIONS)
    _one_of(c, "method", METHODS)
    if c.lora_dtype is not None:
        _one_of(c, "lora_dtype", LORA_DTYPES)
    _one_of(c, "peak_kind", PEAK_KINDS)
    _one_of(c, "offload", OFFLOADS)
    if c.precision == "fp8":
        _check_fp8(c)
    if c.optimizer_in_bwd and (c.grad_accum > 1 or c.zero in (1, 2) or c.offload != "none" or c.method != "full"):
        raise ScalePlanError("optimizer_in_bwd steps each parameter as its gradient is ready: it needs grad_accum 1, "
                             "zero 0 or 3, no offload and method full (torchtune's full-finetune recipes)",
                             param=("optimizer_in_bwd", "grad_accum"))
    if c.activation_offload and c.recompute != "full":
        raise ScalePlanError("activation_offload moves the activation checkpoints to CPU: use recompute full "
                             "(torchtune requires enable_activation_checkpointing)",
                             param=("activation_offload", "recompute"))
    if c.offload != "none" and c.zero == 0:
        raise ScalePlanError("offload needs ZeRO (DeepSpeed ZeRO-Offload): use zero 2 (or 3)", param=("offload", "zero"))
    if c.offload == "params" and c.zero != 3:
        raise ScalePlanError("offload params needs zero 3 (parameters are only partitioned in stage 3)",
                             param=("offload", "zero"))
    if c.tp * c.pp * c.dp != c.gpus:
        raise ScalePlanError(f"tp·pp·dp = {c.tp}·{c.pp}·{c.dp} = {c.tp * c.pp * c.dp} must equal gpus {c.gpus}",
                             param="gpus")
    if shape.n_heads % c.tp or shape.n_kv_heads % c.tp and c.tp % shape.n_kv_heads:
        raise ScalePlanError(f"tp {c.tp} must divide the {shape.n_heads} attention heads "
                             f"(and the {shape.n_kv_heads} KV heads, or be a multiple of them)", param="tp")
    if shape.n_layers % c.pp:
        raise ScalePlanError(f"pp {c.pp} must divide the {shape.n_layers} layers", param="pp")
    if c.method != "full":
        _positive_int(c, "lora_rank")
    for f in ("dropout", "lora_dropout"):
        if not 0 <= getattr(c, f) < 1:
            raise ScalePlanError(f"{f} must be in [0, 1), got {getattr(c, f)}", param=f)
    for f in ("fragmentation", "cuda_context_gib"):
        if not getattr(c, f) >= 0:
            raise ScalePlanError(f"{f} must be >= 0, got {getattr(c, f)}", param=f)
