"""Framework configs written from a Plan: DeepSpeed JSON and accelerate's FSDP YAML. They format what the Plan
holds (layout, batch, learning rate, precision) and decide nothing."""

from __future__ import annotations

import math


def deepspeed_config(plan) -> dict:
    L = plan.layout
    cfg = {
        "train_batch_size": plan.global_batch,
        "train_micro_batch_size_per_gpu": L.micro_batch,
        "gradient_accumulation_steps": L.grad_accum,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": plan.gpu.supports_bf16},
        "fp16": {"enabled": not plan.gpu.supports_bf16},
        "zero_optimization": {"stage": L.zero_stage, "overlap_comm": True, "contiguous_gradients": True,
                              "reduce_bucket_size": 5e8, "allgather_bucket_size": 5e8},
        "optimizer": {"type": "AdamW", "params": {"lr": plan.learning_rate, "betas": [0.9, 0.95], "eps": 1e-8,
                                                  "weight_decay": 0.1}},
        "activation_checkpointing": {"partition_activations": L.recompute == "full",
                                     "contiguous_memory_optimization": False},
        "steps_per_print": 10,
    }
    if L.zero_stage == 3:
        cfg["zero_optimization"].update({"stage3_prefetch_bucket_size": 5e7, "stage3_max_live_parameters": 1e9,
                                         "stage3_param_persistence_threshold": 1e5})
    return cfg


def fsdp_accelerate_config(plan) -> str:
    L = plan.layout
    strategy = {0: "NO_SHARD", 1: "SHARD_GRAD_OP", 2: "SHARD_GRAD_OP", 3: "FULL_SHARD"}[L.zero_stage]
    nodes = max(1, math.ceil(L.gpus / plan.gpus_per_node))  # the node size the plan used (gpus_per_node)
    lines = [
        "# accelerate FSDP config written by scaleplan budget",
        "compute_environment: LOCAL_MACHINE",
        "distributed_type: FSDP",
        "downcast_bf16: 'no'",
        "fsdp_config:",
        "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP",
        "  fsdp_backward_prefetch: BACKWARD_PRE",
        "  fsdp_forward_prefetch: false",
        "  fsdp_cpu_ram_efficient_loading: true",
        "  fsdp_offload_params: false",
        f"  fsdp_sharding_strategy: {strategy}",
        "  fsdp_state_dict_type: SHARDED_STATE_DICT",
        "  fsdp_sync_module_states: true",
        "  fsdp_use_orig_params: true",
        f"  fsdp_activation_checkpointing: {'true' if L.recompute == 'full' else 'false'}",
        "machine_rank: 0",
        "main_training_function: main",
        f"mixed_precision: {'bf16' if plan.gpu.supports_bf16 else 'fp16'}",
        f"num_machines: {nodes}",
        f"num_processes: {L.gpus}",
        "rdzv_backend: static",
        "same_network: true",
        "use_cpu: false",
        f"# per-device micro-batch {L.micro_batch}, gradient accumulation {L.grad_accum}, "
        f"global batch {plan.global_batch} sequences of {plan.seq_len}",
    ]
    return "\n".join(lines) + "\n"
