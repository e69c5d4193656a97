"""Step-time model: one optimizer step of a layout, built from its GEMMs, memory-bound kernels and communication
(docs/planning.md §5.4).

Per micro-batch and layer, on one GPU of the last pipeline stage (it also runs the LM head and the loss):

* GEMM time = FLOPs / (dense peak of the dtype × :func:`gemm_efficiency` (m, n, k)), backward = 2 × forward;
* causal attention (FlashAttention convention: forward 4·b·s²·a·d_h/2, backward 2.5 × forward) at
  :func:`flash_efficiency`;
* memory-bound time = bytes / (HBM bandwidth × ``HBM_EFFICIENCY``) with the framework's bytes (``kernels.py``) for
  norms, residual adds, rotary, the MLP activation, the vocabulary cross-entropy and the optimizer step;
* TP all-reduces (or all-gather + reduce-scatter with SP: the same bytes), the DP gradient reduce and ZeRO gathers
  (exposed part where the framework overlaps), the pipeline bubble (p − 1)/(v·m) and p2p sends, expert all-to-all;
* recompute: full re-runs the forward of every layer (GEMMs, attention, element-wise, TP), selective the attention.

Every constant is named here with its source; the framework facts are in ``kernels.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ScalePlanError
from ..hardware import GPU
from ..model import ModelShape
from .kernels import OPTIMIZER_TOUCHES, Kernels, dp_bucket_params, kernels

BREAKDOWN_KEYS = ("compute", "memory_bound", "tp_comm", "dp_comm_exposed", "pp_bubble", "ep_comm", "recompute")
# (+ "cp_comm", the exposed context-parallel ring exchange, in a breakdown with cp > 1; the planner does not search CP)
RECOMPUTE = ("none", "selective", "full")
ATTENTION = ("flash", "eager")
PRECISIONS = ("bf16", "fp8")
BF16 = 2  # bytes per activation / gradient element on the wire and in HBM

# ---- GEMM efficiency (docs/planning.md §5.4) ---------------------------------------------------------------------
# Best achieved fraction of the dense peak (MAMF: maximum achievable matmul FLOPS, best shape of a brute-force search;
# stas00/ml-engineering compute/accelerator/README.md, "Maximum Achievable Matmul FLOPS comparison table", @ b9e2972):
# BF16 A100 SXM 271.2/312, H100 SXM 794.5/989 ("H200 is the same"), GH200 828.6/989, B200 1745.0/2250;
# FP8 H100 1402.6/1979, H200 1453.4/1979, GH200 1535.0/1979, B200 3432.5/4500.
MAMF = {
    "bf16": {"a100-40": 0.869, "a100-80": 0.869, "a100-40-pcie": 0.811, "a100-80-pcie": 0.811, "h100": 0.803,
             "h200": 0.803, "gh200": 0.838, "b200": 0.776},
    "fp8": {"h100": 0.709, "h200": 0.734, "gh200": 0.776, "b200": 0.763},
}
MAMF_FALLBACK = {"bf16": 0.80, "fp8": 0.70}  # scaleplan: other GPUs, printed as assumed (no MAMF measurement)
# Streaming multiprocessors (vendor architecture whitepapers: A100 108, H100 SXM5 132, H100 PCIe 114; H200/GH200 are
# GH100 parts with 132; B200 148, unverified). Output tiles of TILE = 128 × 128 are scheduled in waves of one tile per
# SM (NVIDIA Deep Learning Performance guide, "Matrix Multiplication Background": tile and wave quantization).
SMS = {"a100": 108, "a100-40": 108, "a100-80": 108, "a100-40-pcie": 108, "a100-80-pcie": 108, "h100": 132,
       "h100-pcie": 114, "h200": 132, "gh200": 132, "b200": 148}
TILE = (128, 128)
K_HALF = 64  # scaleplan: per output tile, prologue/epilogue cost as much as 64 steps of k: efficiency k/(k + 64)
# Sustained fraction of the microbenchmarks (MAMF above, the flash-attention papers' figures below) that GEMMs and
# attention reach inside a training step (clocks at the power cap over minutes, kernels sharing the GPU with
# communication). Calibrated once, as one number for every GPU, dtype and framework, against the validation table of
# docs/planning.md §5.4 (42 published runs, 7 sources): its median signed error is then ~0; calibrated leaving each
# source out in turn it stays 0.84-0.86. Not fitted to any single run.
SUSTAINED = 0.85

# ---- attention, HBM, network ----------------------------------------------------------------------------------
# Causal FlashAttention forward + backward, fraction of the dense BF16 peak at head dim 128 (approximate, read from
# the papers' benchmark figures): FlashAttention-2 (Dao 2023, arXiv:2307.08691) ~150-190 TFLOP/s on A100 (0.5) and
# up to 335 TFLOP/s on H100 (0.3); FlashAttention-3 (Shah et al. 2024, arXiv:2407.08608) 1.5-2x FA2 on H100 (0.5).
FLASH = {"fa2": 0.5, "fa2-hopper": 0.3, "fa3-hopper": 0.5}
HOPPER_OR_LATER = ("h100", "b200")  # data/gpus.csv families with FA3-class kernels
FLASH_BWD = 2.5  # FlashAttention backward = 2.5 x forward FLOPs (5 matmuls vs 2; flash-attn benchmarks' convention)
# Transformer Engine FP8 cast: a bf16 tensor read (2 B) and written as FP8 row-wise and column-wise (transposed, for the
# other GEMM of the backward) copies (1 + 1 B): transformer_engine/pytorch/module/linear.py, input_quantizer.set_usage(
# rowwise=True, columnwise=backward_needs_input) @ d0067d0; the same for grad_output in the backward
FP8_CAST_BYTES = 4.0
HBM_EFFICIENCY = 0.8  # scaleplan: achieved fraction of datasheet HBM bandwidth by streaming kernels (llm-analysis
# defaults to 0.9, which its README calls optimistic; docs/planning.md §5.4)
NET_EFFICIENCY = 0.75  # scaleplan: NCCL bus bandwidth / link bandwidth for large collectives (unverified, §5.4)
# NCCL's cost model (NVIDIA/nccl src/graph/tuning.cc @ 5067397, ncclTunerConstantsDefaults): base latency 14 us of the
# ring and tree algorithms with the Simple protocol; the per-step link latencies (NVLink 3.4 us, network 14 us) are the
# catalogue's intra_node_latency_us / inter_node_latency_us columns (data/gpus.csv).
NCCL_BASE_LATENCY_US = 14.0


@dataclass(frozen=True)
class StepTime:
    seconds: float  # one optimizer step of the whole job (all micro-batches, incl. bubble/exposed comm)
    tokens_per_s: float  # whole job: global_batch_sequences * seq_len / seconds
    breakdown: dict[str, float]  # seconds per step, keys BREAKDOWN_KEYS (0.0 when absent)
    mfu: float  # 6 * N_active * tokens_per_s / (gpus * dense bf16 peak)   (model FLOPs)
    hfu: float  # hardware FLOPs actually executed (attention, recompute) / same denominator
    assumptions: dict  # every efficiency/constant used, with its source string


# ---- building blocks ----------------------------------------------------------------------------------------------
def mamf(gpu: GPU, dtype: str) -> float:
    """Best achieved GEMM fraction of the dense peak for ``dtype`` on ``gpu`` (MAMF table; fallback assumed)."""
    return MAMF[dtype].get(gpu.key, MAMF_FALLBACK[dtype])


def wave_efficiency(m: int, n: int, sms: int | None) -> float:
    """Tile/wave quantisation: 128 × 128 output tiles over ``sms`` SMs; the last wave runs part-empty. Without an SM
    count, 1."""
    if not sms:
        return 1.0
    tiles = math.ceil(m / TILE[0]) * math.ceil(n / TILE[1])
    return tiles / (math.ceil(tiles / sms) * sms)


def gemm_efficiency(gpu: GPU, m: int, n: int, k: int, dtype: str = "bf16") -> float:
    """Fraction of the dense ``dtype`` peak a (m × k)·(k × n) GEMM reaches in a training step: MAMF × SUSTAINED ×
    wave quantisation × k/(k + 64)."""
    return mamf(gpu, dtype) * SUSTAINED * wave_efficiency(m, n, SMS.get(gpu.key)) * k / (k + K_HALF)


def gemm_seconds(gpu: GPU, m: int, n: int, k: int, dtype: str) -> float:
    """Forward time of one GEMM: 2·m·n·k FLOPs at the dtype's peak × efficiency."""
    if m <= 0 or n <= 0 or k <= 0:
        return 0.0
    return 2 * m * n * k / (gpu.peak_tflops(dtype) * 1e12 * gemm_efficiency(gpu, m, n, k, dtype))


def flash_efficiency(gpu: GPU, kern: Kernels) -> float:
    """Causal flash-attention fraction of the dense BF16 peak (fwd + bwd) in a training step, by kernel generation and
    GPU: the papers' figure × SUSTAINED."""
    if gpu.family in HOPPER_OR_LATER:
        return FLASH["fa3-hopper" if kern.fused_attention == "fa3" else "fa2-hopper"] * SUSTAINED
    return FLASH["fa2"] * SUSTAINED


def span(group: int, stride: int, gpn: int) -> tuple[int, int]:
    """(ranks of the group per node, nodes the group spans) for ``group`` ranks ``stride`` apart, ``gpn`` per node."""
    if group * stride <= gpn:
        return group, 1
    k = max(1, min(group, gpn // stride))
    return k, math.ceil(group / k)


def collective_bw(gpu: GPU, group: int, stride: int, gpn: int) -> float:
    """Bus bandwidth (bytes/s per GPU) of a group of ``group`` ranks ``stride`` apart: NVLink inside a node; across
    nodes the group's ranks in one node share their NICs (min(NVLink, k · NIC), k = ranks of the group per node)."""
    k, nodes = span(group, stride, gpn)
    gb_s = gpu.intra_node_gb_s if nodes == 1 else min(gpu.intra_node_gb_s, k * gpu.inter_node_gb_s)
    return gb_s * 1e9 * NET_EFFICIENCY


def ring_seconds(nbytes: float, group: int, bw: float, kind: str) -> float:
    """Bandwidth time of a ring collective on ``nbytes`` per rank: all-reduce moves 2·(g − 1)/g of it, reduce-scatter
    / all-gather (g − 1)/g, all-to-all (g − 1)/g."""
    if group <= 1:
        return 0.0
    factor = 2.0 if kind == "all_reduce" else 1.0
    return factor * (group - 1) / group * nbytes / bw


def collective_latency(gpu: GPU, kind: str, group: int, stride: int, gpn: int) -> float:
    """Latency (seconds) of one collective, as NCCL's own cost model counts it (src/graph/tuning.cc, Simple protocol):
    a base latency plus one link latency per algorithm step. Ring: 2(g − 1) steps for all-reduce, g − 1 for
    all-gather / reduce-scatter, of which 2(nodes − 1) (resp. nodes − 1) cross the network; tree (all-reduce only):
    2·((k − 1) intra-node + log2(nodes) network) steps; NCCL picks the faster, so all-reduce takes the smaller.
    All-to-all and p2p (send/recv issued together): one round, the base plus one link."""
    if group <= 1:
        return 0.0
    k, nodes = span(group, stride, gpn)
    intra, inter = gpu.intra_node_latency_us, gpu.inter_node_latency_us
    if kind in ("all_to_all", "p2p"):
        return (NCCL_BASE_LATENCY_US + (inter if nodes > 1 else intra)) * 1e-6
    steps = 2 * (group - 1) if kind == "all_reduce" else group - 1
    net_steps = 0 if nodes == 1 else (2 * (nodes - 1) if kind == "all_reduce" else nodes - 1)
    ring = NCCL_BASE_LATENCY_US + (steps - net_steps) * intra + net_steps * inter
    if kind == "all_reduce":
        tree = NCCL_BASE_LATENCY_US + 2 * ((k - 1) * intra + math.log2(nodes) * inter)
        ring = min(ring, tree)
    return ring * 1e-6


def all_to_all_seconds(nbytes: float, gpu: GPU, group: int, stride: int, gpn: int) -> float:
    """One all-to-all of ``nbytes`` per rank over ``group`` ranks ``stride`` apart. Each rank keeps 1/g of its data,
    sends (k − 1)/g to the other ranks of its node over NVLink and (g − k)/g to other nodes through its own NIC
    (every GPU of a node takes part in some group, so each has one NIC's worth), both at once: the slower of the two,
    + :func:`collective_latency`. Inside a node it is the ring figure (g − 1)/g over NVLink."""
    if group <= 1:
        return 0.0
    k, nodes = span(group, stride, gpn)
    lat = collective_latency(gpu, "all_to_all", group, stride, gpn)
    if nodes == 1:
        return ring_seconds(nbytes, group, collective_bw(gpu, group, stride, gpn), "all_to_all") + lat
    intra = nbytes * (k - 1) / group / (gpu.intra_node_gb_s * 1e9 * NET_EFFICIENCY)
    inter = nbytes * (group - k) / group / (gpu.inter_node_gb_s * 1e9 * NET_EFFICIENCY)
    return max(intra, inter) + lat


def collective_seconds(nbytes: float, gpu: GPU, kind: str, group: int, stride: int, gpn: int) -> float:
    """One collective on ``nbytes`` per rank: ring bandwidth time (:func:`ring_seconds` at :func:`collective_bw`)
    plus :func:`collective_latency`."""
    if group <= 1:
        return 0.0
    return (ring_seconds(nbytes, group, collective_bw(gpu, group, stride, gpn), kind)
            + collective_latency(gpu, kind, group, stride, gpn))


# ---- per micro-batch terms, one GPU of the last stage -----------------------------------------------------------
def layer_gemm_shapes(shape: ModelShape, tokens: int, tp: int, ep: int) -> list[tuple[int, int, int, int]]:
    """(count, m, n, k) of the forward GEMMs of one layer on one GPU (Megatron column/row splits by ``tp``; MoE:
    E/ep local experts, each with tokens·top_k·ep/E rows on average)."""
    h, f = shape.d_model, shape.ffn
    qkv = (shape.q_width + 2 * shape.kv_width) // tp
    out = [(1, tokens, qkv, h), (1, tokens, h, shape.q_width // tp)]
    up = (2 if shape.gated_mlp else 1) * f // tp
    if shape.n_experts:
        local = max(1, shape.n_experts // ep)
        rows = max(1, round(tokens * shape.top_k * ep / shape.n_experts))
        out += [(1, tokens, shape.n_experts, h), (local, rows, up, h), (local, rows, h, f // tp)]
        if shape.shared_experts:  # always active, every token, TP-split like a dense MLP
            out += [(shape.shared_experts, tokens, up, h), (shape.shared_experts, tokens, h, f // tp)]
    else:
        out += [(1, tokens, up, h), (1, tokens, h, f // tp)]
    return out


def gemm_term(shape: ModelShape, gpu: GPU, tokens: int, tp: int, ep: int, dtype: str, layers: int,
              lm_head: bool) -> tuple[float, float]:
    """Forward GEMM seconds of ``layers`` layers (+ the vocab-parallel LM head) and their FLOPs."""
    t = fl = 0.0
    for count, m, n, k in layer_gemm_shapes(shape, tokens, tp, ep):
        t += layers * count * gemm_seconds(gpu, m, n, k, dtype)
        fl += layers * count * 2 * m * n * k
    if lm_head:  # the output layer stays in bf16 under TE's FP8 recipes
        n = math.ceil(shape.vocab / tp)
        t += gemm_seconds(gpu, tokens, n, shape.d_model, "bf16")
        fl += 2 * tokens * n * shape.d_model
    return t, fl


def attention_flops(shape: ModelShape, micro_batch: int, seq_len: int, tp: int) -> float:
    """Forward FLOPs of causal attention (QKᵀ and PV) of one layer on one GPU: 4·b·s²·(a·d_h)/t × ½."""
    return 4 * micro_batch * seq_len ** 2 * shape.q_width / tp * 0.5


def eager_attention(shape: ModelShape, gpu: GPU, kern: Kernels, micro_batch: int, seq_len: int,
                    tp: int) -> tuple[float, float, float]:
    """Materialised attention of one layer on one GPU (no flash kernel; Megatron-LM before FlashAttention, transformers'
    eager): QKᵀ and PV as batched GEMMs over the full s × s square (the causal mask is applied, not skipped), and the
    softmax/dropout traffic on b·a·s² scores. Returns (forward GEMM seconds, forward FLOPs, fwd + bwd score bytes)."""
    heads = micro_batch * shape.n_heads // tp
    t = heads * (gemm_seconds(gpu, seq_len, seq_len, shape.head_dim, "bf16")
                 + gemm_seconds(gpu, seq_len, shape.head_dim, seq_len, "bf16"))
    flops = heads * 4 * seq_len ** 2 * shape.head_dim
    return t, flops, kern.score_bytes * heads * seq_len ** 2


def fp8_cast_elements(shape: ModelShape, tp: int, sp: bool) -> float:
    """Elements per token that Transformer Engine casts to FP8 in one layer (fwd + bwd): each FP8 GEMM's input in the
    forward (QKV and fc1 on the normed h, ÷ t with SP; proj on the local q; fc2 on the local ffn) and each GEMM's
    output gradient in the backward (QKV, proj, fc1, fc2 outputs), top_k experts for the MLP."""
    h, k = shape.d_model, shape.mlps_per_token
    up = (2 if shape.gated_mlp else 1) * shape.ffn
    normed = (h / tp if sp and tp > 1 else h)
    inputs = normed + shape.q_width / tp + k * (normed + shape.ffn / tp)
    grads = (shape.q_width + 2 * shape.kv_width) / tp + h / tp + k * (up / tp + h / tp)
    return inputs + grads


def memory_bytes(shape: ModelShape, kern: Kernels, tokens: int, tp: int, sp: bool, ep: int,
                 lm_head: bool, precision: str = "bf16") -> tuple[float, float]:
    """HBM bytes of one layer's element-wise work (fwd + bwd) on one GPU, and of the loss: norms and residual adds on
    h per token (÷ t with sequence parallelism), rotary on the local q and k, the activation on the local ffn (top_k
    experts), the cross-entropy over the local vocabulary; under FP8 the casts of :func:`fp8_cast_elements` at
    ``FP8_CAST_BYTES`` each."""
    h = shape.d_model
    per_tok = shape.norms_per_layer * kern.norm_bytes[shape.norm] * h + 2 * kern.residual_bytes * h
    if sp and tp > 1:
        per_tok /= tp
    per_tok += kern.rope_bytes * (shape.q_width + shape.kv_width) / tp
    act = "gated" if shape.gated_mlp else ("plain_tanh" if shape.activation == "gelu_tanh" else "plain")
    per_tok += kern.act_bytes[act] * shape.ffn * shape.mlps_per_token / tp
    if precision == "fp8":
        per_tok += FP8_CAST_BYTES * fp8_cast_elements(shape, tp, sp)
    loss = kern.ce_bytes * tokens * math.ceil(shape.vocab / tp) if lm_head else 0.0
    return per_tok * tokens, loss


def tp_seconds(shape: ModelShape, gpu: GPU, tokens: int, tp: int, gpn: int, sp: bool = False) -> float:
    """Forward TP communication of one layer: two all-reduces of tokens·h bf16 values, or with SP an all-gather and a
    reduce-scatter in place of each (the same bytes, one more collective's latency; Narayanan et al. 2021 §2.3,
    Korthikanti et al. 2022 §4.2.2)."""
    if tp <= 1:
        return 0.0
    nbytes = tokens * shape.d_model * BF16
    if sp:
        return 2 * (collective_seconds(nbytes, gpu, "all_gather", tp, 1, gpn)
                    + collective_seconds(nbytes, gpu, "reduce_scatter", tp, 1, gpn))
    return 2 * collective_seconds(nbytes, gpu, "all_reduce", tp, 1, gpn)


def tp_exposed(comm: float, gemm: float, tp: int, overlap: bool) -> float:
    """The exposed part of TP communication ``comm`` next to ``gemm`` seconds of the GEMMs it feeds or drains: all of
    it without overlap; with TE's userbuffers overlap (all-gather / reduce-scatter split into tp chunks pipelined
    with the GEMM) the first chunk, or what the GEMMs cannot cover: max(comm / tp, comm − gemm)."""
    if not overlap or tp <= 1:
        return comm
    return max(comm / tp, comm - gemm)


def ep_seconds(shape: ModelShape, gpu: GPU, tokens: int, tp: int, ep: int, gpn: int) -> float:
    """Forward expert all-to-all of one MoE layer: dispatch and combine of tokens·top_k·h bf16 values over ``ep``
    ranks strided by ``tp``."""
    if not shape.n_experts or ep <= 1:
        return 0.0
    nbytes = tokens * shape.top_k * shape.d_model * BF16 / tp
    return 2 * all_to_all_seconds(nbytes, gpu, ep, tp, gpn)


def cp_seconds(shape: ModelShape, gpu: GPU, tokens: int, tp: int, cp: int, gpn: int) -> float:
    """Forward context-parallel traffic of one layer (Transformer Engine's ring attention, P2P comm type): each of the
    cp − 1 ring steps passes the local K and V chunk (tokens·2·kv_width/t bf16 values) to the next CP rank; the
    backward passes K, V and their gradients (2 ×, :func:`step_time`). CP ranks are ``tp`` apart (Megatron-Core's
    rank order tp-cp-ep-dp-pp)."""
    if cp <= 1:
        return 0.0
    nbytes = tokens * 2 * shape.kv_width / tp * BF16
    bw = collective_bw(gpu, cp, tp, gpn)
    return (cp - 1) * (nbytes / bw + collective_latency(gpu, "p2p", cp, tp, gpn))


def optimizer_seconds(params_local: float, gpu: GPU, kern: Kernels, optimizer: str, state_bytes: int) -> float:
    """AdamW over the local (sharded) parameters: touches × state bytes per parameter, plus the bf16 model copy
    written when the master weights are fp32, over HBM."""
    touches = OPTIMIZER_TOUCHES[optimizer] * state_bytes + (BF16 if state_bytes > BF16 else 0)
    return params_local * touches / (gpu.mem_bw_gb_s * 1e9 * HBM_EFFICIENCY)


def dp_exposed_seconds(params_local: float, gpu: GPU, kern: Kernels, *, dp: int, stride: int, zero_stage: int,
                       grad_accum: int, grad_bytes: int, t_mb: float, gpn: int, layers: int = 1) -> float:
    """Exposed DP communication per step, in the framework's buckets (:func:`~.kernels.dp_bucket_params`; each bucket
    one collective, so one latency).

    * ZeRO-0: all-reduce of the gradients once per step; ZeRO-1: reduce-scatter once per step + all-gather of the
      updated bf16 parameters; ZeRO-2: the reduce-scatter every micro-batch (DeepSpeed reduces partitioned gradients
      in every backward: deepspeed/runtime/zero/stage_1_and_2.py ``reduce_ready_partitions_and_remove_grads`` @
      edaa722) + the all-gather; ZeRO-3: per micro-batch and per layer, two parameter all-gathers (forward,
      backward) and a gradient reduce-scatter (FSDP / ZeRO-3 units are layers).
    * Overlap: a once-per-step reduce hides behind the backward of the last micro-batch (⅔ of its compute), the
      gather behind the forward of the first (⅓); per-micro-batch traffic behind that micro-batch's compute (the
      backward for ZeRO-2's reduce). Without overlap everything is exposed."""
    if dp <= 1:
        return 0.0

    def coll(nbytes, kind, count):  # ``count`` collectives sharing ``nbytes`` in total
        count = max(1, math.ceil(count))
        return count * collective_seconds(nbytes / count, gpu, kind, dp, stride, gpn)

    if zero_stage == 3:
        per_mb = (coll(params_local * grad_bytes, "reduce_scatter", layers)
                  + 2 * coll(params_local * BF16, "all_gather", layers))
        if not kern.overlap_dp:
            return grad_accum * per_mb
        return grad_accum * max(0.0, per_mb - t_mb)
    buckets = layers if kern.bucket_per_layer else params_local / dp_bucket_params(kern, dp, grad_bytes)
    if zero_stage == 0:
        reduce = coll(params_local * grad_bytes, "all_reduce", buckets)
        gather = 0.0
    else:
        reduce = coll(params_local * grad_bytes, "reduce_scatter", buckets)
        gather = coll(params_local * BF16, "all_gather", buckets)
    reduces = grad_accum if zero_stage == 2 else 1
    if not kern.overlap_dp:
        return reduces * reduce + gather
    return reduces * max(0.0, reduce - 2 / 3 * t_mb) + max(0.0, gather - t_mb / 3)


def bubble_seconds(pp: int, interleave: int, t_mb: float) -> float:
    """Pipeline bubble of 1F1B: (p − 1) micro-batch times, ÷ v with the interleaved schedule — (p − 1)/(v·m) of the
    m micro-batches' time (Narayanan et al. 2021 §2.2). Zero without PP."""
    return (pp - 1) / interleave * t_mb if pp > 1 else 0.0


def recompute_term(recompute: str, layer_fwd: tuple[float, float], attn_fwd: tuple[float, float]) -> tuple[float, float]:
    """(seconds, FLOPs) recomputed per micro-batch: full = the forward of every layer (GEMMs, element-wise, TP/EP
    collectives; ``layer_fwd``) and its attention; selective = the core attention forward only (Korthikanti et al.
    2022 §5); none = 0. The LM head and loss are not recomputed."""
    if recompute == "full":
        return layer_fwd[0] + attn_fwd[0], layer_fwd[1] + attn_fwd[1]
    if recompute == "selective":
        return attn_fwd
    return 0.0, 0.0


# ---- validation of inputs ---------------------------------------------------------------------------------------
def _check(shape, *, tp, pp, dp, ep, micro_batch, grad_accum, seq_len, zero_stage, recompute, precision,
           gpus_per_node, interleave, optimizer, state_bytes, cp=1):
    for name, v in (("tp", tp), ("pp", pp), ("dp", dp), ("ep", ep), ("cp", cp), ("micro_batch", micro_batch),
                    ("grad_accum", grad_accum), ("seq_len", seq_len), ("gpus_per_node", gpus_per_node),
                    ("interleave", interleave)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ScalePlanError(f"{name} must be a positive integer, got {v!r}", param=name)
    if shape.n_heads % tp or shape.n_kv_heads % tp and tp % shape.n_kv_heads:
        raise ScalePlanError(f"tp {tp} must divide the {shape.n_heads} attention heads and divide (or be a multiple "
                             f"of) the {shape.n_kv_heads} KV heads", param="tp")
    if shape.n_layers % (pp * interleave):
        raise ScalePlanError(f"pp {pp} × interleave {interleave} must divide the {shape.n_layers} layers", param="pp")
    if ep > 1 and (not shape.n_experts or shape.n_experts % ep or dp % ep):
        raise ScalePlanError(f"ep {ep} needs an MoE model whose experts ({shape.n_experts}) and dp ({dp}) it divides",
                             param="ep")
    if cp > 1 and seq_len % (2 * cp):
        raise ScalePlanError(f"seq_len {seq_len} must be divisible by 2·cp = {2 * cp} (load-balanced causal context "
                             "parallelism)", param=("seq_len", "cp"))
    if zero_stage not in (0, 1, 2, 3):
        raise ScalePlanError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}", param="zero_stage")
    if recompute not in RECOMPUTE:
        raise ScalePlanError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {recompute!r}", param="recompute")
    if precision not in PRECISIONS:
        raise ScalePlanError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}", param="precision")
    if optimizer is not None and optimizer not in OPTIMIZER_TOUCHES:
        raise ScalePlanError(f"optimizer must be one of {', '.join(OPTIMIZER_TOUCHES)}, got {optimizer!r}",
                             param="optimizer")
    if state_bytes not in (2, 4):
        raise ScalePlanError(f"state_bytes must be 2 (bf16 states) or 4 (fp32), got {state_bytes!r}",
                             param="state_bytes")


# ---- the step -----------------------------------------------------------------------------------------------------
def step_time(shape: ModelShape, gpu: GPU, *, tp: int, pp: int, dp: int, micro_batch: int, grad_accum: int,
              seq_len: int, zero_stage: int = 1, recompute: str = "none", sp: bool = False, ep: int = 1,
              framework: str = "megatron", precision: str = "bf16", gpus_per_node: int = 8, interleave: int = 1,
              optimizer: str | None = None, state_bytes: int = 4, attention: str = "flash", cp: int = 1,
              tp_overlap: bool | None = None) -> StepTime:
    """Predicted time of one optimizer step of ``shape`` on ``tp·pp·dp·cp`` GPUs of type ``gpu`` (docs/planning.md
    §5.4).

    ``ep`` divides ``dp`` (expert parallelism inside the data-parallel group); ``interleave`` is the virtual pipeline
    stages per GPU (bubble (p − 1)/(v·m)); ``optimizer`` (fused / foreach) overrides the framework's;
    ``state_bytes`` is 4 for fp32 master weights and Adam states (mixed precision), 2 for pure bf16 training;
    ``tp_overlap`` overrides the framework's TP-communication overlap (which needs ``sp``); ``attention`` "flash"
    (causal fused kernel) or "eager" (scores materialised, :func:`eager_attention`); ``cp``
    context parallelism (each sequence split over cp ranks, load-balanced causal attention, ring K/V exchange).
    Ranks are ordered as Megatron-Core orders them (tp-cp-ep-dp-pp): DP groups ``tp·cp`` apart, pipeline stages
    on the next ``tp·cp·dp`` ranks.
    """
    kern = kernels(framework)
    _check(shape, tp=tp, pp=pp, dp=dp, ep=ep, micro_batch=micro_batch, grad_accum=grad_accum, seq_len=seq_len,
           zero_stage=zero_stage, recompute=recompute, precision=precision, gpus_per_node=gpus_per_node,
           interleave=interleave, optimizer=optimizer, state_bytes=state_bytes, cp=cp)
    if attention not in ATTENTION:
        raise ScalePlanError(f"attention must be one of {', '.join(ATTENTION)}, got {attention!r}", param="attention")
    if attention == "eager" and cp > 1:
        raise ScalePlanError("context parallelism needs flash attention (ring attention)", param=("attention", "cp"))
    opt = optimizer or kern.optimizer
    gpn = gpus_per_node
    gpus = tp * pp * dp * cp
    tokens = micro_batch * seq_len // cp  # per GPU: CP splits each sequence
    layers = shape.n_layers // pp  # the last stage: its layers + LM head + loss
    hbm = gpu.mem_bw_gb_s * 1e9 * HBM_EFFICIENCY
    peak16 = gpu.peak_tflops("bf16") * 1e12

    # one micro-batch, forward, on one GPU of the last stage
    g_fwd, g_flops = gemm_term(shape, gpu, tokens, tp, ep, precision, layers, lm_head=True)
    layer_bytes, loss_bytes = memory_bytes(shape, kern, tokens, tp, sp, ep, lm_head=True, precision=precision)
    if attention == "flash":
        a_flops = layers * attention_flops(shape, micro_batch, seq_len, tp) / cp  # load-balanced causal chunks
        a_eff = flash_efficiency(gpu, kern)
        a_fwd, a_bwd = a_flops / (peak16 * a_eff), FLASH_BWD
    else:  # batched GEMMs, backward 2 x forward; the score traffic joins the memory-bound bytes
        a_eff = "batched GEMMs"
        a_fwd, a_flops, score_bytes = (layers * x for x in eager_attention(shape, gpu, kern, micro_batch, seq_len, tp))
        a_bwd = 2.0
        layer_bytes += score_bytes / layers
    mem = (layers * layer_bytes + loss_bytes) / hbm  # fwd + bwd
    tp_raw = layers * tp_seconds(shape, gpu, tokens, tp, gpn, sp)
    head_fwd = gemm_seconds(gpu, tokens, math.ceil(shape.vocab / tp), shape.d_model, "bf16")
    overlap = kern.tp_overlap if tp_overlap is None else tp_overlap
    tp_fwd = tp_exposed(tp_raw, g_fwd - head_fwd, tp, overlap and sp)
    tp_bwd = tp_exposed(tp_raw, 2 * (g_fwd - head_fwd), tp, overlap and sp)  # bwd mirrors the collectives
    ep_fwd = layers * ep_seconds(shape, gpu, tokens, tp, ep, gpn)
    # CP ring exchange overlaps the attention of the chunk in hand: only the excess is exposed (fwd, bwd)
    cp_layer = cp_seconds(shape, gpu, tokens, tp, cp, gpn)
    a_layer = a_fwd / max(layers, 1)
    cp_mb = layers * (max(0.0, cp_layer - a_layer) + max(0.0, 2 * cp_layer - a_bwd * a_layer))

    compute_mb = 3 * g_fwd + (1 + a_bwd) * a_fwd
    tp_mb = tp_fwd + tp_bwd
    ep_mb = 2 * ep_fwd
    head_flops = 2 * tokens * math.ceil(shape.vocab / tp) * shape.d_model
    rec_mb, rec_flops = recompute_term(recompute, layer_fwd=(g_fwd - head_fwd + layers * layer_bytes / 3 / hbm
                                                             + tp_fwd + ep_fwd, g_flops - head_flops),
                                       attn_fwd=(a_fwd, a_flops))
    t_mb = compute_mb + mem + tp_mb + ep_mb + rec_mb + cp_mb

    # the step
    params_stage = shape.params_total / pp  # per stage (embedding / head imbalance ignored)
    params_local = params_stage / tp
    if shape.n_experts and ep > 1:  # experts are split over ep as well
        expert_params = shape.n_layers / pp * shape.n_experts * shape.mlp_params() / tp
        params_local -= expert_params * (1 - 1 / ep)
    shard = dp * cp if zero_stage >= 1 else 1  # the distributed optimizer shards over DP × CP
    t_opt = optimizer_seconds(params_local / shard, gpu, kern, opt, state_bytes)
    if precision == "fp8":  # the FP8 weight copies (and transposes) cast once per step, at the first micro-batch
        t_opt += params_local * FP8_CAST_BYTES / hbm
    grad_bytes = 4 if state_bytes == 4 and framework == "megatron" else BF16  # Megatron reduces fp32 main grads
    # gradients are reduced over DP × CP (the CP ranks hold the same parameters), ranks tp apart
    dp_exp = dp_exposed_seconds(params_local, gpu, kern, dp=dp * cp, stride=tp, zero_stage=zero_stage,
                                grad_accum=grad_accum, grad_bytes=grad_bytes, t_mb=compute_mb, gpn=gpn,
                                layers=layers)
    p2p = 0.0
    if pp > 1:  # send activations forward and gradients back, b·s·h/t values each (scatter/gather), per boundary
        # the next stage is tp·cp·dp ranks on: another node once a stage fills a node; each GPU sends its own slice
        link = gpu.inter_node_gb_s if tp * cp * dp >= gpn else gpu.intra_node_gb_s
        p2p = 2 * tokens * shape.d_model * BF16 / tp / (link * 1e9 * NET_EFFICIENCY)
    bubble = bubble_seconds(pp, interleave, t_mb)

    m = grad_accum
    breakdown = {"compute": m * compute_mb, "memory_bound": m * mem + t_opt, "tp_comm": m * tp_mb,
                 "dp_comm_exposed": dp_exp, "pp_bubble": bubble + m * p2p * interleave, "ep_comm": m * ep_mb,
                 "recompute": m * rec_mb, **({"cp_comm": m * cp_mb} if cp > 1 else {})}
    seconds = sum(breakdown.values())
    tokens_step = m * dp * micro_batch * seq_len
    tps = tokens_step / seconds
    mfu = 6 * shape.params_active * tps / (gpus * peak16)
    hw_flops_gpu = m * (3 * g_flops + (1 + a_bwd) * a_flops + rec_flops)  # last stage, per GPU
    hfu = hw_flops_gpu / (seconds * peak16)
    assumptions = {
        "gemm_mamf": (round(mamf(gpu, precision), 3), "stas00/ml-engineering MAMF table (docs/planning.md §5.4)"
                      if gpu.key in MAMF[precision] else "assumed: no MAMF measurement for this GPU"),
        "gemm_tile_sms": (TILE, SMS.get(gpu.key), "NVIDIA matmul guide: wave quantisation; SMs from whitepapers"),
        "gemm_k_half": (K_HALF, "scaleplan: prologue/epilogue per tile"),
        "sustained": (SUSTAINED, "scaleplan: one factor calibrated on the validation table (docs/planning.md §5.4)"),
        "attention": (attention, a_eff, "flash: FlashAttention-2/-3 papers' causal fwd+bwd figures (approximate)"),
        "hbm_efficiency": (HBM_EFFICIENCY, "scaleplan (llm-analysis uses 0.9)"),
        "net_efficiency": (NET_EFFICIENCY, "scaleplan (unverified)"),
        "framework": (framework, f"kernels.py: optimizer {opt}, dp overlap {kern.overlap_dp}, "
                                 f"attention {kern.fused_attention}"),
        "precision": (precision, "fp8: layer GEMMs at the FP8 peak × FP8 MAMF; LM head, attention in bf16"),
        "pipeline": ("1F1B" if interleave == 1 else f"interleaved v={interleave}", "Narayanan et al. 2021 §2.2"),
    }
    return StepTime(seconds=seconds, tokens_per_s=tps, breakdown=breakdown, mfu=mfu, hfu=hfu,
                    assumptions=assumptions)
