"""What the software stack decides about kernels: fusion, optimizer implementation, overlap (docs/planning.md §5.4).

One :class:`Kernels` per framework name of ``memory/profiles.py``. Bytes are HBM traffic (reads + writes) of the
element-wise work around the GEMMs, counted from each stack's op list (forward + backward, per tensor element); no
number here is fitted to a run. The op lists behind each count are in docs/planning.md §5.4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ScalePlanError


@dataclass(frozen=True)
class Kernels:
    name: str
    norm_bytes: dict  # per norm-input element, fwd + bwd, by ModelShape.norm ("rmsnorm" / "layernorm")
    residual_bytes: float  # per residual-add element, fwd + bwd (same fused or not: read 2, write 1, twice)
    rope_bytes: float  # per q and k element, fwd + bwd
    act_bytes: dict  # per ffn element (one expert), fwd + bwd: "gated" (SiLU(gate)·up) / "plain" (GeLU)
    ce_bytes: float  # per logit (token × vocab entry), fwd + bwd of softmax cross-entropy
    optimizer: str  # "fused" (one multi-tensor kernel) or "foreach" (one pass per arithmetic op)
    overlap_dp: bool  # gradient reduce (and ZeRO gathers) overlapped with compute
    fused_attention: str  # "fa2" (FlashAttention-2 through SDPA) or "fa3" (cuDNN / FlashAttention-3 class on Hopper+)
    score_bytes: float  # per attention-score element (b·a·s²), fwd + bwd, when attention="eager" materialises scores
    # gradient bucket of the data-parallel reduce (parameters per collective): max(bucket, bucket_per_rank · dp), or
    # bucket_bytes of gradient bytes (torch DDP); ZeRO-3 / FSDP collectives are per layer whatever these say
    tp_overlap: bool = False  # TP collectives overlapped with the adjacent GEMMs (TE userbuffers; needs SP)
    bucket_per_layer: bool = False  # FSDP: one collective per layer (its wrapping unit) at every ZeRO stage
    bucket: float = 0.0
    bucket_per_rank: float = 0.0
    bucket_bytes: float = 0.0


# Tensor touches (reads + writes of one state-sized tensor) of one AdamW step per parameter (§5.4):
# fused (apex/TE FusedAdam, torch fused=True): read p, g, m, v; write p, m, v = 7.
# foreach (torch/optim/adamw.py _multi_tensor_adamw): mul_(p) 2, lerp_(m, g) 3, mul_(v) 2, addcmul_(v, g, g) 4,
# sqrt(v) 2, div_ 2, add_(eps) 2, addcdiv_(p, m, denom) 4 = 21.
OPTIMIZER_TOUCHES = {"fused": 7, "foreach": 21}

_FUSED = dict(
    # TE fused LayerNorm/RMSNorm: fwd read x, write y (2+2 B); bwd read x, dy, write dx (6 B) -> 10 B per element
    norm_bytes={"rmsnorm": 10.0, "layernorm": 10.0},
    residual_bytes=12.0,  # fwd read a, b write a+b (6 B); bwd gradient add again (6 B)
    rope_bytes=8.0,  # TE fused RoPE: fwd read + write (4 B), bwd the same
    # fused bias-SwiGLU (core/fusions/fused_bias_swiglu.py): fwd read gate, up, write out (6 B per ffn element);
    # bwd read gate, up, dout, write dgate, dup (10 B) -> 16; fused bias-GeLU: fwd 4 B, bwd 6 B -> 10
    act_bytes={"gated": 16.0, "plain": 10.0, "plain_tanh": 10.0},
    # vocab-parallel cross-entropy on fp32 logits: fwd upcast (2+4), max (4), exp in place (8), sum (4); bwd grad
    # in place (8), downcast (4+2) -> 36 B per logit
    ce_bytes=36.0,
    # Megatron fused scale-mask-softmax + dropout on 16-bit scores: fwd softmax 4, dropout 4 + 1 (mask); bwd dropout
    # 5, softmax 6 -> 20 B per score
    score_bytes=20.0,
)
_EAGER = dict(
    # transformers LlamaRMSNorm (eager ops): fwd to(fp32) 6, pow 8, mean 4, mul 8, to(bf16) 6, weight mul 4 = 36 B;
    # autograd backward re-reads each saved input and writes each grad: 2 x forward = 72 -> 108.
    # LayerNorm is torch's native fused kernel (10 B, as fused).
    norm_bytes={"rmsnorm": 108.0, "layernorm": 10.0},
    residual_bytes=12.0,
    # apply_rotary_pos_emb eager: q*cos 4, rotate_half (slice+neg 2, cat 4), *sin 4, add 6 = 20 B; bwd 2x -> 60
    rope_bytes=60.0,
    # act_fn(gate) * up eager: silu 4 + mul 6 = 10 B fwd; bwd mul grads 12 + silu grad 6 = 18 -> 28.
    # Plain MLP: torch's native GeLU kernel 4 + 6 = 10. GPT-2's gelu_new (transformers activations.py
    # NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))) is eight eager ops: forward pow 4, mul 4, add 6,
    # mul 4, tanh 4, add 4, mul 4, mul 6 = 36 B; backward pow 14, three scalar muls 12, tanh 14, final mul 12, the
    # add and the two gradient accumulations of x 18 = 70 -> 106
    act_bytes={"gated": 28.0, "plain": 10.0, "plain_tanh": 106.0},
    # ForCausalLMLoss: logits.float() 6, log_softmax (max, sum, write) 16, nll 4; bwd nll grad 4, log_softmax
    # grad 12, downcast 6 -> 48 B per logit
    ce_bytes=48.0,
    # eager_attention_forward: mask add 4, softmax(dtype=fp32) 6, to(bf16) 6 = 16 B fwd; bwd 2x -> 48 B per score
    score_bytes=48.0,
)

KERNELS: dict[str, Kernels] = {
    # Megatron-LM / Megatron-Core + Transformer Engine: fused kernels, FusedAdam (core/optimizer/__init__.py),
    # --overlap-grad-reduce / --overlap-param-gather as in Megatron-Core's performance recipes, cuDNN attention
    # DDP buckets: max(40M, 1M · dp) parameters (megatron/core/distributed/distributed_data_parallel.py L134 @ d98e8a6)
    # --tp-comm-overlap with SP, as NVIDIA's performance recipes run it (NVIDIA/NeMo scripts/performance/llm/
    # pretrain_llama3_70b.py, pretrain_gpt3_175b.py, ...: tp_comm_overlap=True @ 8cfedd7)
    "megatron": Kernels("megatron", optimizer="fused", overlap_dp=True, fused_attention="fa3", bucket=4e7,
                        bucket_per_rank=1e6, tp_overlap=True, **_FUSED),
    # DeepSpeed runs transformers models (eager element-wise ops) with FusedAdam and overlap_comm (emitted config)
    # reduce_bucket_size / allgather_bucket_size 5e8 elements (deepspeed/runtime/zero/config.py L113, L132 @ edaa722)
    "deepspeed": Kernels("deepspeed", optimizer="fused", overlap_dp=True, fused_attention="fa2", bucket=5e8,
                         **_EAGER),
    # transformers + Trainer: eager ops, SDPA attention, adamw_torch (foreach), DDP bucketed overlap
    # torch DDP bucket_cap_mb = 25 (MiB of gradients; torch/nn/parallel/distributed.py)
    "hf": Kernels("hf", optimizer="foreach", overlap_dp=True, fused_attention="fa2", bucket_bytes=25 * 2**20,
                  **_EAGER),
    # torchtune: eager ops in transformers' style (fp32 RMSNorm), torch AdamW (foreach default), FSDP2 overlap
    # FSDP2: one collective per fully_shard unit (each decoder layer), at any ZeRO stage torchtune runs
    "torchtune": Kernels("torchtune", optimizer="foreach", overlap_dp=True, fused_attention="fa2",
                         bucket_per_layer=True, **_EAGER),
    # plain PyTorch with fused kernels (memory profile "generic")
    "generic": Kernels("generic", optimizer="fused", overlap_dp=True, fused_attention="fa2", bucket_bytes=25 * 2**20,
                       **_FUSED),
}


def dp_bucket_params(kern: Kernels, dp: int, grad_bytes: int) -> float:
    """Parameters per data-parallel gradient bucket (one collective each) under ``kern`` at ``dp`` ranks; infinite
    (one collective for everything) when the stack declares no bucket."""
    if kern.bucket_bytes:
        return kern.bucket_bytes / grad_bytes
    if kern.bucket or kern.bucket_per_rank:
        return max(kern.bucket, kern.bucket_per_rank * dp)
    return math.inf


def kernels(framework: str) -> Kernels:
    """The kernel facts of ``framework`` (a name of memory/profiles.py)."""
    if framework not in KERNELS:
        raise ScalePlanError(f"framework must be one of {', '.join(KERNELS)}, got {framework!r}", param="framework")
    return KERNELS[framework]
