"""Inference memory: weights, KV cache and one forward's activations (docs/memory.md §8)."""

from __future__ import annotations

from ..model import ModelShape
from ..units import GIB
from . import result, states
from .result import MemoryEstimate

LOGIT_BYTES = 4  # fp32 logits of the last position


def kv_cache_bytes(shape: ModelShape, context: int, batch: int, bytes_per: float = 2.0) -> float:
    """K and V for every layer: 2·L·(kv_heads·head_dim)·context·batch·bytes (GQA-aware: kv heads, not d_model;
    docs/memory.md §8)."""
    return 2.0 * shape.n_layers * shape.kv_width * context * batch * bytes_per


def inference_weight_bytes(c) -> float:
    """Bytes per weight (and KV element) at inference: 4 under fp32, else 2."""
    return {"fp32": 4, "amp": 2}.get(c.precision, 2)


def inference_estimate(shape: ModelShape, c, gpu) -> MemoryEstimate:
    """Per-GPU inference memory: weights (NF4 linears under QLoRA) and KV cache ÷ (t·p), activations of one forward
    w·batch·context·(2h + 2f)/t + fp32 logits of one position (docs/memory.md §8)."""
    w_b = inference_weight_bytes(c)
    ctx_len = c.context or c.seq_len
    if c.method == "qlora":
        lin = shape.n_layers * (shape.layer_params() - shape.norms_per_layer * shape._norm_params())
        W = states.NF4_DQ_BYTES * lin + 2 * (shape.params_total - lin)
    else:
        W = w_b * shape.params_total
    W /= c.tp * c.pp
    kv = kv_cache_bytes(shape, ctx_len, c.batch, w_b) / (c.tp * c.pp)
    act = w_b * c.batch * ctx_len * (2 * shape.d_model + 2 * shape.ffn) / c.tp + LOGIT_BYTES * c.batch * shape.vocab
    comp = {"weights": W, "gradients": 0.0, "optimizer": 0.0, "activations": act, "logits": 0.0, "buffers": kv}
    alloc = sum(comp.values())
    reserved, device = result.reserved_and_device(alloc, c)
    comp["overhead"] = result.overhead_shown(alloc, reserved, device, c.peak_kind)
    return MemoryEstimate(shape=shape, config=c, breakdown=comp, allocated=alloc, reserved=reserved, device=device,
                          cpu_bytes=0.0, params_total=shape.params_total, params_trainable=0,
                          params_active=shape.params_active, phases={"inference": alloc}, peak_phase="inference",
                          rank="inference", gpu_name=gpu.name if gpu is not None else None,
                          gpu_memory_gib=gpu.memory_gib if gpu is not None else None,
                          assumptions={"mode": "inference", "weight_bytes": w_b, "kv_cache_gib": kv / GIB,
                                       "kv_bytes_per_token": kv_cache_bytes(shape, 1, 1, w_b),
                                       "context": ctx_len, "batch": c.batch, "units": "GiB = 2^30 bytes",
                                       "buffers": "KV cache"})
