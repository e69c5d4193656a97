"""Launch files written from a Plan: Megatron-LM arguments, a DeepSpeed JSON config and accelerate's FSDP YAML
(docs/planning.md §4.5). They format what the Plan holds (layout, batch, shape, learning rate, precision, tokens) and
decide nothing: a stack that cannot run the planned layout, or whose memory profile did not check it, is refused with
one line saying what to change, never given a file for some other layout.

The batch each file runs is the plan's: micro-batch b per GPU x gradient accumulation m x data-parallel size d =
global batch B sequences (``batch_identity``), and every comment states the same numbers as the file.
"""

from __future__ import annotations

import math

from ..errors import ScalePlanError

EMITTERS = ("megatron", "deepspeed", "fsdp")

# The memory profile (scaleplan --framework) each emitter's stack is costed with (docs/memory.md §11).
STACK = {"megatron": "megatron", "deepspeed": "deepspeed", "fsdp": "hf"}

# Optimizer settings not held by the Plan: AdamW beta1 0.9, beta2 0.95, weight decay 0.1, gradient clipping 1.0,
# cosine decay to 10% of the peak, 2,000 warm-up steps (Touvron et al. 2023, LLaMA §2.2; docs/planning.md §4.5).
ADAM_BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
MIN_LR_FRACTION = 0.1
WARMUP_STEPS = 2000


# ---- what each stack can run (docs/planning.md §4.5) ------------------------------------------------------------
def check_emittable(kind: str, *, framework: str | None = None, tp: int | None = None, pp: int | None = None,
                    ep: int | None = None, recompute: str | None = None) -> None:
    """Raise ScalePlanError unless ``kind``'s stack can run this layout and the plan was costed with its memory
    profile. Values left None are not checked (the CLI checks the pinned ones before planning, the plan's after)."""
    if kind not in EMITTERS:
        raise ScalePlanError(f"emit must be one of {', '.join(EMITTERS)}, got {kind!r}", param="emit")
    stack = STACK[kind]
    if kind == "megatron":
        if framework is not None and framework != stack:
            raise ScalePlanError(f"Megatron-LM arguments need a plan costed for Megatron-LM: plan with framework "
                                 f"megatron (this plan's memory and time are {framework}'s)", param="framework")
        return
    what = "accelerate's FSDP" if kind == "fsdp" else "DeepSpeed (with a transformers model)"
    if tp is not None and tp > 1:
        raise ScalePlanError(f"{what} cannot run tensor parallelism and the layout has TP {tp}: plan with tp 1, or "
                             f"emit megatron for this layout", param=("tp", "emit"))
    if pp is not None and pp > 1:
        raise ScalePlanError(f"{what} cannot run pipeline parallelism and the layout has PP {pp}: plan with pp 1, or "
                             f"emit megatron for this layout", param=("pp", "emit"))
    if ep is not None and ep > 1:
        raise ScalePlanError(f"{what} has no expert parallelism and the layout has EP {ep}: emit megatron for this "
                             f"layout", param="emit")
    if kind == "fsdp" and recompute == "selective":
        raise ScalePlanError("accelerate's FSDP config checkpoints whole layers, not selective recomputation: plan "
                             "with recompute full or none, or emit megatron", param=("recompute", "emit"))
    if framework is not None and framework != stack:
        raise ScalePlanError(f"the {kind} config needs a plan whose memory was checked with the {stack} profile: plan "
                             f"with framework {stack} (this plan was costed for {framework})", param="framework")


def check_plan(plan, kind: str) -> None:
    """:func:`check_emittable` on the plan's own layout and framework."""
    L = plan.layout
    check_emittable(kind, framework=plan.framework, tp=L.tp, pp=L.pp, ep=getattr(L, "ep", 1), recompute=L.recompute)


def batch_identity(plan) -> tuple[int, int, int, int]:
    """(micro-batch, gradient accumulation, data-parallel size, global batch) of the plan, with
    micro x accumulation x dp = global batch checked (every emitter writes these numbers)."""
    L = plan.layout
    if L.micro_batch * L.grad_accum * L.dp != plan.global_batch:
        raise ScalePlanError(f"the plan's batch does not add up: micro-batch {L.micro_batch} x accumulation "
                             f"{L.grad_accum} x dp {L.dp} != global batch {plan.global_batch}")
    return L.micro_batch, L.grad_accum, L.dp, plan.global_batch


def _precision(plan) -> str:
    """bf16, fp16 (GPUs without bf16) or fp8 (a plan computing in FP8)."""
    if getattr(plan.layout, "precision", "bf16") == "fp8":
        return "fp8"
    return "bf16" if plan.gpu.supports_bf16 else "fp16"


def train_iters(plan) -> int:
    """Optimizer steps that consume the plan's tokens: ceil(D / (global batch x sequence length))."""
    return max(1, math.ceil(plan.tokens / (plan.global_batch * plan.seq_len)))


def _nodes(plan) -> int:
    return max(1, math.ceil(plan.layout.gpus / plan.gpus_per_node))


def _header(plan, kind: str, c: str = "#") -> list[str]:
    L = plan.layout
    b, m, d, B = batch_identity(plan)
    mem = plan.memory
    fit = f" of {mem.gpu_memory_gib:.1f}" if mem.gpu_memory_gib else ""
    return [
        f"{c} {kind} launch file written by scaleplan budget (docs/planning.md §4.5)",
        f"{c} layout: TP {L.tp} x PP {L.pp} x DP {d} = {L.gpus} GPUs ({_nodes(plan)} node(s) of {plan.gpus_per_node} "
        f"{plan.gpu.name})",
        f"{c} batch: micro-batch {b} x gradient accumulation {m} x DP {d} = global batch {B} sequences of "
        f"{plan.seq_len} tokens; {train_iters(plan)} steps for {plan.tokens:.4g} tokens",
        f"{c} memory: checked with scaleplan's {mem.config.framework} profile: {mem.device / 2**30:.1f}{fit} GiB "
        f"per GPU at the peak",
    ]


# ---- Megatron-LM ------------------------------------------------------------------------------------------------
def megatron_arguments(plan) -> list[tuple[str, str | None]]:
    """(flag, value or None) pairs for Megatron-LM ``pretrain_gpt.py``; every name is checked against
    megatron/training/arguments.py @ NVIDIA/Megatron-LM d98e8a6 (docs/planning.md §4.5)."""
    check_plan(plan, "megatron")
    L, s = plan.layout, plan.shape
    b, _, _, B = batch_identity(plan)
    steps = train_iters(plan)
    a: list[tuple[str, str | None]] = [
        ("--tensor-model-parallel-size", str(L.tp)),
        ("--pipeline-model-parallel-size", str(L.pp)),
    ]
    if L.sp and L.tp > 1:
        a.append(("--sequence-parallel", None))
        # the step-time model costs TP communication overlapped with the GEMMs (TE userbuffers) where the plan's
        # framework overlaps it, as NVIDIA's recipes run it; Megatron needs SP for it (validate_args,
        # megatron/training/arguments.py L1441 @ d98e8a6)
        from ..planner.kernels import kernels

        if kernels(plan.framework).tp_overlap:
            a.append(("--tp-comm-overlap", None))
    if s.n_experts:
        a += [("--num-experts", str(s.n_experts)), ("--moe-router-topk", str(s.top_k)),
              ("--expert-model-parallel-size", str(getattr(L, "ep", 1)))]
        if s.shared_experts:  # TransformerConfig.moe_shared_expert_intermediate_size (all shared experts together)
            a.append(("--moe-shared-expert-intermediate-size", str(s.shared_experts * s.ffn)))
    a += [("--micro-batch-size", str(b)), ("--global-batch-size", str(B)), ("--seq-length", str(plan.seq_len)),
          ("--num-layers", str(s.n_layers)), ("--hidden-size", str(s.d_model)), ("--ffn-hidden-size", str(s.ffn)),
          ("--num-attention-heads", str(s.n_heads))]
    if s.head_dim * s.n_heads != s.d_model:
        a.append(("--kv-channels", str(s.head_dim)))
    if s.n_kv_heads < s.n_heads:
        a += [("--group-query-attention", None), ("--num-query-groups", str(s.n_kv_heads))]
    if s.learned_pos:
        a += [("--position-embedding-type", "learned_absolute"), ("--max-position-embeddings", str(s.learned_pos))]
    else:
        a += [("--position-embedding-type", "rope"), ("--max-position-embeddings", str(plan.seq_len))]
    if s.gated_mlp:
        a.append(("--swiglu", None))
    a.append(("--normalization", "RMSNorm" if s.norm == "rmsnorm" else "LayerNorm"))
    if s.bias == "none":
        a.append(("--disable-bias-linear", None))
    elif s.bias == "qkv":
        a += [("--disable-bias-linear", None), ("--add-qkv-bias", None)]
    if not s.tied_embeddings:
        a.append(("--untie-embeddings-and-output-weights", None))
    prec = _precision(plan)
    a.append(("--fp16", None) if prec == "fp16" else ("--bf16", None))
    if prec == "fp8":
        a += [("--fp8-format", "hybrid"), ("--fp8-recipe", "delayed")]
    if L.recompute == "full":
        a += [("--recompute-granularity", "full"), ("--recompute-method", "uniform"), ("--recompute-num-layers", "1")]
    elif L.recompute == "selective":
        a.append(("--recompute-granularity", "selective"))
    if L.zero_stage == 1:
        a.append(("--use-distributed-optimizer", None))
    elif L.zero_stage in (2, 3):
        # Megatron-FSDP: v1 runs on the distributed optimizer and needs the fsdp_dtensor checkpoint format
        # (validate_args in megatron/training/arguments.py @ d98e8a6)
        a += [("--use-megatron-fsdp", None), ("--use-distributed-optimizer", None),
              ("--data-parallel-sharding-strategy", "optim_grads" if L.zero_stage == 2 else "optim_grads_params"),
              ("--ckpt-format", "fsdp_dtensor")]
    if L.dp > 1:
        a.append(("--overlap-grad-reduce", None))
        if L.zero_stage >= 1:
            a.append(("--overlap-param-gather", None))
    warmup = min(WARMUP_STEPS, steps // 10)
    a += [("--train-iters", str(steps)), ("--lr", f"{plan.learning_rate:.6g}"),
          ("--min-lr", f"{plan.learning_rate * MIN_LR_FRACTION:.6g}"), ("--lr-decay-style", "cosine"),
          ("--lr-decay-iters", str(steps)), ("--lr-warmup-iters", str(warmup)),
          ("--weight-decay", str(WEIGHT_DECAY)), ("--clip-grad", str(GRAD_CLIP)),
          ("--adam-beta1", str(ADAM_BETAS[0])), ("--adam-beta2", str(ADAM_BETAS[1]))]
    return a


def megatron_args(plan) -> str:
    """A bash file defining ``MEGATRON_ARGS`` (one flag per line) for ``pretrain_gpt.py``; data and tokenizer
    flags are the user's."""
    args = megatron_arguments(plan)
    lines = ["#!/usr/bin/env bash", *_header(plan, "Megatron-LM"),
             f"# vocabulary {plan.shape.vocab}: comes from your tokenizer (Megatron pads it to a multiple of "
             "--make-vocab-size-divisible-by x TP)",
             f"# use: source this file; torchrun --nnodes {_nodes(plan)} --nproc-per-node "
             f"{min(plan.gpus_per_node, plan.layout.gpus)} pretrain_gpt.py \"${{MEGATRON_ARGS[@]}}\" "
             "--data-path ... --tokenizer-type ... --tokenizer-model ...",
             "MEGATRON_ARGS=("]
    lines += [f"  {k}" if v is None else f"  {k} {v}" for k, v in args]
    lines.append(")")
    return "\n".join(lines) + "\n"


# ---- DeepSpeed --------------------------------------------------------------------------------------------------
def deepspeed_config(plan) -> dict:
    """DeepSpeed JSON for a transformers model: ZeRO stage, batch (train_batch_size = micro x accumulation x DP, as
    DeepSpeed asserts) and AdamW; refused for layouts DeepSpeed cannot run without Megatron."""
    check_plan(plan, "deepspeed")
    L = plan.layout
    b, m, _, B = batch_identity(plan)
    prec = _precision(plan)
    cfg = {
        "train_batch_size": B,
        "train_micro_batch_size_per_gpu": b,
        "gradient_accumulation_steps": m,
        "gradient_clipping": GRAD_CLIP,
        "bf16": {"enabled": prec != "fp16"},
        "fp16": {"enabled": prec == "fp16"},
        "zero_optimization": {"stage": L.zero_stage, "overlap_comm": True, "contiguous_gradients": True,
                              "reduce_bucket_size": 5e8, "allgather_bucket_size": 5e8},
        "optimizer": {"type": "AdamW", "params": {"lr": plan.learning_rate, "betas": list(ADAM_BETAS), "eps": 1e-8,
                                                  "weight_decay": WEIGHT_DECAY}},
        "steps_per_print": 10,
    }
    if L.zero_stage == 3:
        cfg["zero_optimization"].update({"stage3_prefetch_bucket_size": 5e7, "stage3_max_live_parameters": 1e9,
                                         "stage3_param_persistence_threshold": 1e5})
    return cfg


# ---- accelerate FSDP --------------------------------------------------------------------------------------------
FSDP_STRATEGY = {0: "NO_SHARD", 1: "SHARD_GRAD_OP", 2: "SHARD_GRAD_OP", 3: "FULL_SHARD"}


def fsdp_accelerate_config(plan) -> str:
    """accelerate's FSDP YAML: one process per GPU, all of them data parallel (FSDP has no TP or PP, so the plan
    must have TP 1, PP 1 and its memory checked with the hf profile); the Trainer batch flags in the comment."""
    check_plan(plan, "fsdp")
    L = plan.layout
    b, m, d, B = batch_identity(plan)
    prec = _precision(plan)
    lines = [
        *_header(plan, "accelerate FSDP"),
        f"# run: accelerate launch --config_file THIS_FILE train.py --per_device_train_batch_size {b} "
        f"--gradient_accumulation_steps {m}  ({b} x {m} x {d} processes = {B} sequences per step)",
    ]
    if L.zero_stage == 1:
        lines.append("# ZeRO-1 planned: FSDP has no optimizer-only sharding; SHARD_GRAD_OP also shards gradients "
                     "(less memory than planned)")
    lines += [
        "compute_environment: LOCAL_MACHINE",
        "distributed_type: FSDP",
        "downcast_bf16: 'no'",
        "fsdp_config:",
        "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP",
        "  fsdp_backward_prefetch: BACKWARD_PRE",
        "  fsdp_forward_prefetch: false",
        "  fsdp_cpu_ram_efficient_loading: true",
        "  fsdp_offload_params: false",
        f"  fsdp_sharding_strategy: {FSDP_STRATEGY[L.zero_stage]}",
        "  fsdp_state_dict_type: SHARDED_STATE_DICT",
        "  fsdp_sync_module_states: true",
        "  fsdp_use_orig_params: true",
        f"  fsdp_activation_checkpointing: {'true' if L.recompute == 'full' else 'false'}",
        "machine_rank: 0",
        "main_training_function: main",
        f"mixed_precision: {prec}",
        f"num_machines: {_nodes(plan)}",
        f"num_processes: {d}",
        "rdzv_backend: static",
        "same_network: true",
        "use_cpu: false",
    ]
    return "\n".join(lines) + "\n"


def emit_text(plan, kind: str) -> str:
    """The file ``kind`` writes for ``plan`` (JSON for deepspeed), refused for layouts its stack cannot run."""
    import json

    check_emittable(kind)
    if kind == "megatron":
        return megatron_args(plan)
    if kind == "deepspeed":
        return json.dumps(deepspeed_config(plan), indent=2) + "\n"
    return fsdp_accelerate_config(plan)
