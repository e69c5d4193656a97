"""Software-stack profiles: the facts that differ between training stacks (docs/memory.md §11).

Each :class:`Profile` fact is read from that project's code or docs (the comment after it names the file and commit;
docs/memory.md §11.1-§11.5 quotes them); none is a fitted factor. Each profile's ``notes`` explain facts by name, and
:data:`NOTE_APPLIES` says when a fact acts, so an estimate lists only the notes of facts that act on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from ..errors import ScalePlanError
from ..model import ModelShape


@dataclass(frozen=True)
class Profile:
    """What one software stack stores, and in which dtype (docs/memory.md §11 table)."""

    name: str
    default_precision: str  # precision when none is given (a key of states.PRECISIONS; §1)
    norm_extra_bytes: float  # bytes per norm-input element saved beyond the activation dtype (§4.2)
    gated_mlp_saved: int  # (s, b, ffn) tensors a gated MLP saves with all its linears trainable (§4.2)
    logits_bytes: float  # bytes per logit element (s·b·V) alive at the forward/backward boundary (§5)
    eager_score_bytes: float  # bytes per attention-score element (a·s²·b) saved by eager attention (§4.2)
    adapter_bytes: tuple[float, float, float]  # LoRA adapter weight, grad, AdamW bytes per parameter (§6)
    opt_temp: bool  # the optimizer step allocates one optimizer-state-sized temporary (foreach AdamW; §7)
    grads_persistent: bool  # gradient buffers stay allocated between steps (§7 phases)
    ddp_bucket_copy: bool  # DDP copies gradients into separate buckets (gradient_as_bucket_view=False; §7)
    ds_buckets: bool  # DeepSpeed ZeRO reduce / all-gather buckets of 5e8 elements each (§7)
    fp32_grad_partition: bool  # the ZeRO optimizer keeps an fp32 copy of its gradient partition (§1)
    activation_factor: float  # multiplier on activations and logits, where the project's own estimator uses one
    notes: Mapping[str, str] = field(default_factory=dict, compare=False)  # fact name -> why it has this value
    # QLoRA: prepare_model_for_kbit_training casts every non-4-bit parameter to fp32, so the residual stream, the norm
    # outputs and the 4-bit linears' outputs are fp32 (§6.1)
    kbit_fp32_upcast: bool = False
    # MoE: the per-expert loop saves each expert's gathered tokens and its output weighted by the router (§4.2 MoE)
    moe_token_copies: bool = False
    # "flash" attention is PyTorch SDPA called with enable_gqa=True, so an fp32 GQA model runs SDPA's math kernel and
    # saves the s² probabilities (no fp32 flash kernel; mem-efficient rejects GQA): activations.sdpa_math_fallback (§4.2)
    sdpa_gqa_fp32_math: bool = False

    def __post_init__(self):
        facts = {f.name for f in fields(self)} - {"name", "notes"}
        unknown = set(self.notes) - facts
        if unknown:
            raise ValueError(f"profile {self.name}: notes for unknown facts {sorted(unknown)}")
        object.__setattr__(self, "notes", MappingProxyType(dict(self.notes)))


def _always(shape, c) -> bool:
    return True


# When each fact acts on an estimate (shape, resolved MemoryConfig) -> bool; a fact not listed always acts.
NOTE_APPLIES: dict[str, Callable[[ModelShape, object], bool]] = {
    "default_precision": lambda shape, c: c.precision == profile(c.framework).default_precision,
    "gated_mlp_saved": lambda shape, c: shape.gated_mlp,
    "logits_bytes": lambda shape, c: not c.chunked_ce,
    "eager_score_bytes": lambda shape, c: c.attention == "eager",
    "sdpa_gqa_fp32_math": lambda shape, c: (c.attention == "flash" and c.precision == "fp32"
                                            and shape.n_kv_heads < shape.n_heads and c.recompute == "none"),
    "adapter_bytes": lambda shape, c: c.method != "full" and c.lora_dtype is None,
    "kbit_fp32_upcast": lambda shape, c: c.method == "qlora",
    "moe_token_copies": lambda shape, c: bool(shape.n_experts),
}


def applicable_notes(prof: Profile, shape: ModelShape, c) -> list[str]:
    """The profile's notes on the facts that act on this estimate, in the profile's order."""
    return [text for fact, text in prof.notes.items() if NOTE_APPLIES.get(fact, _always)(shape, c)]


PROFILES: dict[str, Profile] = {
    # §11.1 plain PyTorch with fused kernels
    "generic": Profile(
        name="generic",
        default_precision="mixed",  # ZeRO paper §3.1 (2 + 2 + 12 B/param)
        norm_extra_bytes=0.0,  # fused norm saves its 16-bit input: Korthikanti et al. 2022 §4.1
        gated_mlp_saved=4,  # LlamaMLP.forward, modeling_llama.py @ transformers 5dd4a63; derivatives.yaml @ d327a78
        logits_bytes=8.0,  # fp32 log-softmax output saved + fp32 gradient at the start of backward
        eager_score_bytes=2.0,  # 16-bit softmax output (Korthikanti et al. count 2·a·s²·b)
        adapter_bytes=(4, 4, 8),  # PEFT autocast_adapter_dtype=True: mapping_func.py @ peft ea8b8f0
        opt_temp=True,  # foreach AdamW _foreach_sqrt temporary: torch/optim/adam.py @ pytorch dc80ccd
        grads_persistent=False,  # zero_grad(set_to_none=True): torch/optim/optimizer.py @ pytorch bf6a61d
        ddp_bucket_copy=False,
        ds_buckets=False,
        fp32_grad_partition=False,
        activation_factor=1.0,
        notes={
            "norm_extra_bytes": "fused norms save their input in the activation dtype",
            "gated_mlp_saved": "gated MLP saves gate output, SiLU output, up output and their product (4 x s·b·ffn)",
            "logits_bytes": "loss on fp32 logits: fp32 log-probs saved + fp32 gradient at the start of backward "
                            "(8 B per logit)",
            "adapter_bytes": "LoRA adapters kept in fp32 (PEFT autocast_adapter_dtype default)",
            "opt_temp": "PyTorch foreach AdamW allocates one state-sized temporary at the step",
        }),
    # §11.2 Hugging Face transformers + Trainer (+ PEFT)
    "hf": Profile(
        name="hf",
        default_precision="amp",  # Trainer --bf16 = autocast: training_args.py @ transformers fd79833
        norm_extra_bytes=4.0,  # LlamaRMSNorm upcasts, saves the fp32 input: modeling_llama.py @ 5dd4a63
        gated_mlp_saved=4,  # LlamaMLP.forward, same file
        logits_bytes=12.0,  # ForCausalLMLoss logits.float(): loss/loss_utils.py @ transformers d0fed63
        eager_score_bytes=6.0,  # eager_attention_forward fp32 softmax + 16-bit copy: modeling_llama.py @ 5dd4a63
        adapter_bytes=(4, 4, 8),  # PEFT, as generic
        opt_temp=True,  # TrainingArguments.optim default adamw_torch (foreach) @ fd79833
        grads_persistent=False,  # torch zero_grad(set_to_none=True), as generic
        ddp_bucket_copy=True,  # DDP gradient_as_bucket_view=False: torch/nn/parallel/distributed.py @ 25562d3
        # prepare_model_for_kbit_training: src/peft/utils/other.py @ peft 5d602fd; Linear4bit.forward
        # .to(inp_dtype): bitsandbytes/nn/modules.py @ bitsandbytes 95f9af3
        kbit_fp32_upcast=True,
        # MixtralSparseMoeBlock.forward: models/mixtral/modeling_mixtral.py @ transformers 00d4b3d
        moe_token_copies=True,
        ds_buckets=False,
        fp32_grad_partition=False,
        activation_factor=1.0,
        sdpa_gqa_fp32_math=True,  # sdpa_attention_forward enable_gqa: integrations/sdpa_attention.py @ 00c238b
        notes={
            "norm_extra_bytes": "transformers' RMSNorm upcasts to fp32: saves the fp32 input (4 B) and the 16-bit "
                                "normalised output",
            "default_precision": "Trainer --bf16 is torch autocast over fp32 weights (precision amp)",
            "logits_bytes": "ForCausalLMLoss upcasts logits to fp32: saved fp32 log-probs + fp32 grad of log-probs "
                            "+ fp32 grad of logits coexist in cross-entropy backward (12 B per logit)",
            "eager_score_bytes": "eager attention: fp32 softmax + 16-bit copy saved (6 B per score)",
            "adapter_bytes": "PEFT keeps LoRA adapters in fp32 (autocast_adapter_dtype=True)",
            "ddp_bucket_copy": "DDP copies gradients into buckets (gradient_as_bucket_view=False by default)",
            "sdpa_gqa_fp32_math": "fp32 GQA model: SDPA with enable_gqa has no fp32 fused kernel and runs the math "
                                  "kernel, which saves the fp32 s² attention probabilities",
            "kbit_fp32_upcast": "QLoRA: prepare_model_for_kbit_training casts embeddings, norms and LM head to fp32; "
                                "residual stream, norm outputs and 4-bit linear outputs are then fp32, each adapter "
                                "saves its own bf16 autocast copy of its input",
            "moe_token_copies": "MoE expert loop: each expert's gathered tokens and its routing-weighted output are "
                                "saved (top-k copies of s·b·h each), plus the fp32 router softmax",
        }),
    # §11.3 torchtune
    "torchtune": Profile(
        name="torchtune",
        default_precision="bf16",  # dtype: bf16, recipes/configs/llama3/8B_full.yaml @ torchtune 2b1ee6d
        norm_extra_bytes=4.0,  # RMSNorm x.float(): torchtune/modules/rms_norm.py @ 6820089
        gated_mlp_saved=4,  # FeedForward w2(act(w1(x)) * w3(x)), as generic
        logits_bytes=6.0,  # CEWithChunkedOutputLoss: bf16 logits + fp32 log-probs, ce_chunked_output_loss.py @ ce5433b
        eager_score_bytes=2.0,
        adapter_bytes=(2, 2, 4),  # adapters built under set_default_dtype(bf16): lora_finetune_single_device.py @ 2b1ee6d
        opt_temp=True,  # torch AdamW (foreach); over-counts configs with fused: True (cca50f0), §11.3
        grads_persistent=False,
        ddp_bucket_copy=False,
        ds_buckets=False,
        fp32_grad_partition=False,
        activation_factor=1.0,
        notes={
            "norm_extra_bytes": "RMSNorm computed in fp32: saves the fp32 input and the bf16 output",
            "default_precision": "recipes train in pure bf16 (weights, grads and AdamW states bf16)",
            "adapter_bytes": "LoRA adapters bf16 (built under the recipe's default dtype)",
            "logits_bytes": "CEWithChunkedOutputLoss: bf16 logits kept (2 B) + fp32 log-probs (4 B) per logit",
            "opt_temp": "full-finetune recipes default to torch AdamW (foreach)",
        }),
    # §11.4 Megatron-LM / Megatron-Core with Transformer Engine (all files @ NVIDIA/Megatron-LM d98e8a6)
    "megatron": Profile(
        name="megatron",
        default_precision="mixed-fp32-grads",  # docs/user-guide/features/dist_optimizer.md; training/arguments.py
        norm_extra_bytes=0.0,  # TE fused LayerNorm/RMSNorm saves its 16-bit input
        gated_mlp_saved=3,  # SwiGLUFunction saves fc1 output (2f): core/fusions/fused_bias_swiglu.py; fc2 input (1f)
        # vocab_parallel_cross_entropy: fp32 copy of the bf16 logits (2 + 4 B in forward); exp/div in place, the fp32
        # softmax saved; backward grad in place (4 B) + its bf16 cast (2 B): core/tensor_parallel/cross_entropy.py
        logits_bytes=6.0,
        eager_score_bytes=2.0,
        adapter_bytes=(4, 4, 8),  # no LoRA in Megatron: the PEFT convention
        opt_temp=False,  # FusedAdam (TE or Apex): core/optimizer/__init__.py
        grads_persistent=True,  # contiguous main-grad buffer: core/distributed/param_and_grad_buffer.py
        ddp_bucket_copy=False,
        ds_buckets=False,
        fp32_grad_partition=False,  # the fp32 main grads are the precision's 4 B gradients already
        activation_factor=1.05,  # overhead_factor = 1.05 in theoretical_memory_usage.py
        notes={
            "norm_extra_bytes": "Transformer Engine fused LayerNorm/RMSNorm saves its 16-bit input",
            "gated_mlp_saved": "fused SwiGLU saves fc1 output (2 x s·b·ffn) and the product (1 x)",
            "logits_bytes": "vocab-parallel cross-entropy upcasts the bf16 logits to fp32 and keeps the fp32 softmax; "
                            "its fp32 gradient and the bf16 cast coexist at the start of backward (6 B per logit)",
            "grads_persistent": "contiguous fp32 main-grad buffer, always allocated",
            "opt_temp": "fused Adam (no step temporaries)",
            "activation_factor": "activations x1.05 for temporaries, as Megatron's theoretical_memory_usage.py",
        }),
    # §11.5 DeepSpeed ZeRO with Hugging Face models (files @ deepspeedai/DeepSpeed edaa722)
    "deepspeed": Profile(
        name="deepspeed",
        default_precision="mixed",  # bf16 weights + grads, fp32 master and Adam states
        norm_extra_bytes=4.0,  # Hugging Face models, as hf
        gated_mlp_saved=4,  # as hf
        logits_bytes=12.0,  # as hf
        eager_score_bytes=6.0,  # as hf
        adapter_bytes=(4, 4, 8),  # PEFT
        opt_temp=False,  # FusedAdam for "Adam"/"AdamW": runtime/engine.py
        grads_persistent=True,  # reduced gradient partitions kept: runtime/zero/stage_1_and_2.py
        ddp_bucket_copy=False,
        ds_buckets=True,  # reduce_bucket_size / allgather_bucket_size 5e8: runtime/zero/config.py
        fp32_grad_partition=True,  # single_partition_of_fp32_groups: runtime/zero/stage_1_and_2.py
        activation_factor=1.0,
        sdpa_gqa_fp32_math=True,  # Hugging Face models, as hf
        notes={
            "norm_extra_bytes": "models are Hugging Face transformers (fp32 RMSNorm, fp32 loss)",
            "fp32_grad_partition": "ZeRO optimizer keeps an fp32 copy of its gradient partition "
                                   "(stage_1_and_2.py: 2 + 2 + 16 B/param)",
            "ds_buckets": "reduce and all-gather buckets of 5e8 elements each (DeepSpeed defaults)",
            "opt_temp": "fused Adam (no step temporaries)",
        }),
}
FRAMEWORKS = tuple(PROFILES)
# What each stack name stands for, as the terminal's first line names it (docs/memory.md §11)
STACK_LABELS: dict[str, str] = {
    "hf": "transformers + PEFT", "megatron": "Megatron-Core + Transformer Engine",
    "deepspeed": "DeepSpeed ZeRO + transformers", "torchtune": "torchtune recipes",
    "generic": "plain PyTorch, fused kernels",
}

DS_BUCKET_ELEMENTS = 5e8  # DeepSpeed reduce_bucket_size = allgather_bucket_size default (runtime/zero/config.py)


def profile(name: str) -> Profile:
    """The profile called ``name`` (``framework=`` of MemoryConfig)."""
    if name not in PROFILES:
        raise ScalePlanError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {name!r}", param="framework")
    return PROFILES[name]
