"""Model states: bytes per parameter of weights, gradients and optimizer state, and their ZeRO sharding.

Every number here is per parameter and in bytes; docs/memory.md §1 gives the sources, §2 the sharding rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import ModelShape


@dataclass(frozen=True)
class Precision:
    """Bytes per element of each model state and of the saved activations under one training precision."""

    weight: float  # the weights the forward pass reads
    grad: float  # gradient buffers
    master: float  # fp32 master copy kept by the optimizer (0: none, the weights are the master)
    state: float  # one optimizer state (e.g. AdamW's m or v)
    activation: float  # e, bytes per saved activation element
    fp8: bool = False  # Transformer Engine FP8 GEMMs: cached FP8 weight copies + FP8 GEMM inputs (docs/memory.md §13)


PRECISIONS: dict[str, Precision] = {  # docs/memory.md §1 (table with sources)
    "fp32": Precision(weight=4, grad=4, master=0, state=4, activation=4),  # Adam: two fp32 moments
    "amp": Precision(weight=4, grad=4, master=0, state=4, activation=2),  # torch autocast over fp32 weights
    "mixed": Precision(weight=2, grad=2, master=4, state=4, activation=2),  # ZeRO paper §3.1, K = 12
    "mixed-fp32-grads": Precision(weight=2, grad=4, master=4, state=4, activation=2),  # Megatron dist_optimizer.md
    "bf16": Precision(weight=2, grad=2, master=0, state=2, activation=2),  # pure 16-bit (torchtune recipes)
    "fp16": Precision(weight=2, grad=2, master=0, state=2, activation=2),
    # Megatron-Core + Transformer Engine FP8 (docs/memory.md §13): the bf16 weights, fp32 main grads, fp32 main params
    # and Adam states of mixed-fp32-grads, plus FP8_WEIGHT_COPY_BYTES per FP8-GEMM weight and FP8 GEMM inputs
    "fp8": Precision(weight=2, grad=4, master=4, state=4, activation=2, fp8=True),
}

# Transformer Engine FP8 on Hopper (docs/memory.md §13; NVIDIA/TransformerEngine @ d0067d0, NVIDIA/Megatron-LM @
# d98e8a6). Each FP8 GEMM's weight is quantised into a workspace the module keeps across micro-batches and steps
# (te.Linear.forward: cache_name "weight" in self._fp8_workspaces whenever is_first_microbatch is not None,
# transformer_engine/pytorch/module/linear.py; Megatron passes is_first_microbatch unless
# disable_parameter_transpose_cache, default False: megatron/core/extensions/transformer_engine.py). The workspace
# holds the row-wise FP8 data for the forward GEMM and its FP8 transpose for the backward (dgrad) GEMM, 1 B each:
# Hopper's FP8 tensor cores run only TN GEMMs (Float8Quantizer::create_tensor allocates `transpose` when
# columnwise_usage && !nvte_is_non_tn_fp8_gemm_supported(), transformer_engine/pytorch/csrc/quantizer.cpp).
FP8_WEIGHT_COPY_BYTES = 2
# Input of an FP8 GEMM saved for the weight-gradient GEMM: one FP8 copy, column-wise (transpose) data only on Hopper
# or row-wise only under sequence parallelism, 1 B per element (_linear_forward, "Discard row-wise data since it is
# not needed in backward pass", linear.py; ln_out in layernorm_linear.py).
FP8_ACTIVATION_BYTES = 1

# QLoRA §3 (Dettmers et al. 2023): NF4 4-bit weights + 0.127 bits/param of double-quantised constants.
NF4_DQ_BYTES = 0.5 + 0.127 / 8
# bitsandbytes Optimizer2State (51294d9): one uint8 state + one fp32 absmax per 256-element block.
BNB_8BIT_STATE = 1 + 4 / 256

OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "paged-adamw-32bit", "sgd", "sgd-momentum", "lion",
              "adafactor")
# Paged bitsandbytes optimizers: bytes per parameter of the states kept in CUDA unified memory (two uint8 states;
# PagedAdamW32bit: two fp32 states whatever the parameter dtype, Optimizer2State.init_state, bitsandbytes/optim/
# optimizer.py @ 95f9af3); the 8-bit absmax stays a torch tensor (docs/memory.md §1).
PAGED_STATE_BYTES = {"paged-adamw-8bit": 2.0, "paged-adamw-32bit": 8.0}
STEP_TEMPORARY_OPTIMIZERS = ("adamw", "lion", "sgd-momentum")  # foreach step allocates one state-sized temporary


def optimizer_state_bytes(optimizer: str, state_bytes: float, shape: ModelShape, n_params: float) -> float:
    """Optimizer-state bytes per parameter, excluding the fp32 master copy (docs/memory.md §1).

    ``state_bytes`` is the width of one full-precision state (4 or 2 B). AdamW keeps two moments, SGD-momentum and
    Lion one, plain SGD none; 8-bit AdamW two blockwise-quantised states; Adafactor (no momentum) a factored second
    moment, rows + columns per matrix, averaged over ``n_params``."""
    if optimizer == "adamw":
        return 2 * state_bytes
    if optimizer in ("adamw-8bit", "paged-adamw-8bit"):
        return 2 * BNB_8BIT_STATE
    if optimizer == "paged-adamw-32bit":
        return 2 * 4.0  # fp32 states even for 16-bit parameters (optim_bits=32)
    if optimizer == "sgd":
        return 0.0
    if optimizer in ("sgd-momentum", "lion"):
        return state_bytes
    per_layer = sum(i + o for i, o in shape.linear_shapes().values())
    matrices = per_layer * shape.n_layers + shape.vocab + shape.d_model
    return state_bytes * matrices / max(n_params, 1.0)


# ZeRO (Rajbhandari et al. 2020 §5; docs/memory.md §2): the lowest stage that shards each model state over the
# data-parallel group. Stage 1 = P_os, stage 2 = P_os+g, stage 3 = P_os+g+p (FSDP FULL_SHARD).
ZERO_SHARDS_FROM: dict[str, int] = {"optimizer": 1, "gradients": 2, "weights": 3}


def sharded(zero: int) -> dict[str, bool]:
    """Which model states ZeRO stage ``zero`` shards: {"optimizer", "gradients", "weights"} -> bool."""
    return {part: zero >= stage for part, stage in ZERO_SHARDS_FROM.items()}


def shard(weights: float, grads: float, optimizer: float, zero: int, dp: int) -> tuple[float, float, float]:
    """Bytes of (weights, gradients, optimizer) one data-parallel rank holds under ZeRO stage ``zero`` over ``dp``
    ranks: each state sharded by the rule of :data:`ZERO_SHARDS_FROM` is divided by ``dp``."""
    s = sharded(zero)
    return (weights / dp if s["weights"] else weights, grads / dp if s["gradients"] else grads,
            optimizer / dp if s["optimizer"] else optimizer)


# LoRA adapter weight / gradient / AdamW bytes per parameter when ``lora_dtype`` is given (docs/memory.md §6).
ADAPTER_BYTES: dict[str, tuple[float, float, float]] = {"fp32": (4, 4, 8), "bf16": (2, 2, 4)}
