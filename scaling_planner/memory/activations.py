"""Activation memory, one function per saved tensor group (docs/memory.md §4, §5).

The count generalises Korthikanti et al. 2022 (*Reducing Activation Recomputation in Large Transformer Models*, §4,
Table 2) to GQA, gated MLPs, no dropout, flash attention and LoRA: each function returns the bytes one TP rank keeps
for backward for one micro-batch, already divided by the tensor-parallel size where that tensor is split (always for
the attention and MLP internals; for the replicated inputs only with sequence parallelism).

Arguments: ``shape`` (ModelShape), ``c`` (a resolved MemoryConfig), ``prof`` (Profile), ``trainable`` (linears trained
in full) and ``adapted`` (linears with LoRA adapters); a linear saves its input only when one of the two holds it.
Symbols as docs/memory.md §0: s seq_len,
b micro_batch, h d_model, f ffn, a heads, e activation bytes, t tp.
"""

from __future__ import annotations

from ..model import ModelShape
from . import states
from .profiles import Profile, profile

FLASH_LSE_BYTES = 4  # FlashAttention keeps one fp32 log-sum-exp per query row and head (Dao et al. 2022)
DROPOUT_MASK_BYTES = 1  # one byte per element (Korthikanti et al. 2022 §4.1)
CHUNKED_CE_LOGIT_BYTES = 0.5  # scaleplan allowance for one chunk of a chunked/fused loss (docs/memory.md §5)
FP32_BYTES = 4
INDEX_BYTES = 8  # int64 token / expert indices (torch.where, torch.topk)


def _e(c) -> float:
    return states.PRECISIONS[c.precision].activation


def _fp8(c) -> bool:
    return states.PRECISIONS[c.precision].fp8


def _gemm_input(c) -> float:
    """Bytes per element of a GEMM input saved for the weight gradient: one FP8 copy under Transformer Engine FP8
    (states.FP8_ACTIVATION_BYTES; docs/memory.md §13.2), else the activation dtype e."""
    return states.FP8_ACTIVATION_BYTES if _fp8(c) else _e(c)


def _rep(c) -> int:
    """Divisor of the tensors replicated across TP ranks: t with sequence parallelism, else 1."""
    return c.tp if c.sp else 1


def kbit_upcast(c, prof: Profile | None = None) -> bool:
    """QLoRA as transformers + PEFT run it (docs/memory.md §6.1): prepare_model_for_kbit_training casts every
    non-Params4bit parameter to fp32 (src/peft/utils/other.py @ peft 5d602fd), so the embedding output, the residual
    stream and the RMSNorm outputs (fp32 weight × input) are fp32, and bitsandbytes' Linear4bit returns its output
    in the input's dtype (``.to(inp_dtype)``, bitsandbytes/nn/modules.py @ 95f9af3): fp32 q/k/v and MLP tensors.
    Under autocast (precision amp) each LoRA A casts its fp32 input to bf16 and saves that copy. True when the
    profile has the fact, method qlora, precision amp."""
    prof = prof if prof is not None else profile(c.framework)
    return c.method == "qlora" and prof.kbit_fp32_upcast and c.precision == "amp"


def _needs(trainable, adapted) -> set[str]:
    """Linears whose weight needs a gradient, so that they save their input."""
    return set(trainable) | set(adapted)


def _sbh(shape: ModelShape, c) -> float:
    return c.seq_len * c.micro_batch * shape.d_model


# ---------------------------------------------------------------------------- one layer: replicated across TP
def norm_inputs(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Inputs saved by the layer's norms: (norms per layer)·(e + profile extra bytes)·s·b·h (Korthikanti §4.1 counts
    2·s·b·h per LayerNorm; fp32-upcasting norms add 4 B; docs/memory.md §4.2). QLoRA with the fp32 upcast
    (:func:`kbit_upcast`): the fp32 residual input only, 4·s·b·h — the frozen fp32 weight's product saves no
    normalised copy (docs/memory.md §6.1)."""
    per = FP32_BYTES if kbit_upcast(c, prof) else _e(c) + prof.norm_extra_bytes
    return shape.norms_per_layer * per * _sbh(shape, c) / _rep(c)


def attention_input(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """The first norm's output, saved by the Q/K/V projections (or their LoRA A) when one needs a gradient:
    e·s·b·h (Korthikanti §4.1 "QKV matrix multiplies ... 2sbh"; docs/memory.md §4.2); under FP8 the fused
    norm + QKV GEMM saves it in FP8, 1 B per element (docs/memory.md §13.2). 0 under :func:`kbit_upcast`: the
    fp32 norm output is saved by no one but each adapter's own bf16 copy (:func:`lora_intermediates`)."""
    if kbit_upcast(c, prof):
        return 0.0
    return _gemm_input(c) * _sbh(shape, c) / _rep(c) if _needs(trainable, adapted) & {"q", "k", "v"} else 0.0


def mlp_input(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """The second norm's output, saved by the MLP's first linear(s) when gate or up needs a gradient: e·s·b·h
    (Korthikanti §4.1; docs/memory.md §4.2); under FP8 the fused norm + fc1 GEMM of a dense MLP saves it in FP8,
    1 B per element, while an MoE layer's router keeps it in the activation dtype (docs/memory.md §13.2). 0 under
    :func:`kbit_upcast`, as :func:`attention_input`."""
    if kbit_upcast(c, prof):
        return 0.0
    per = _e(c) if shape.n_experts else _gemm_input(c)
    return per * _sbh(shape, c) / _rep(c) if _needs(trainable, adapted) & {"gate", "up"} else 0.0


def dropout_masks(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Two residual dropout masks, 1 byte per element, only with dropout > 0: 2·s·b·h (Korthikanti §4.1;
    docs/memory.md §4.2)."""
    return 2 * DROPOUT_MASK_BYTES * _sbh(shape, c) / _rep(c) if c.dropout > 0 else 0.0


# ---------------------------------------------------------------------------- one layer: split over TP
def qkv_saved(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Q, K and V saved by the attention kernel: e·s·b·(q_width + 2·kv_width)/t — KV heads, not a, under GQA
    (Korthikanti §4.1 counts 4sbh for Q and K plus 2sbh for V under MHA; docs/memory.md §4.2)."""
    return _e(c) * c.seq_len * c.micro_batch * (shape.q_width + 2 * shape.kv_width) / c.tp


def attention_output(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Attention output, saved by the kernel and by the output projection: e·s·b·q_width/t (Korthikanti §4.1;
    docs/memory.md §4.2). Under FP8 (delayed scaling, Megatron's default recipe) the output projection saves its own
    FP8 copy besides the kernel's 16-bit output: (e + 1)·s·b·q_width/t (docs/memory.md §13.2)."""
    extra = states.FP8_ACTIVATION_BYTES if _fp8(c) and "o" in _needs(trainable, adapted) else 0.0
    return (_e(c) + extra) * c.seq_len * c.micro_batch * shape.q_width / c.tp


def flash_softmax_stats(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Flash attention keeps only the fp32 log-sum-exp of each row: 4·a·s·b/t (Dao et al. 2022; docs/memory.md
    §4.2). 0 under eager attention."""
    return FLASH_LSE_BYTES * shape.n_heads * c.seq_len * c.micro_batch / c.tp if c.attention == "flash" else 0.0


def eager_attention_scores(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Eager attention saves the s² score tensors: (profile score bytes + (1 + e) with dropout)·a·s²·b/t
    (Korthikanti §4.1: 2as²b softmax + as²b mask + 2as²b dropout output). Selective and full recompute drop them
    (Korthikanti §5; docs/memory.md §4.3). 0 under flash attention."""
    if c.attention != "eager" or c.recompute != "none":
        return 0.0
    per = prof.eager_score_bytes + ((DROPOUT_MASK_BYTES + _e(c)) if c.dropout > 0 else 0)
    return per * shape.n_heads * c.seq_len * c.seq_len * c.micro_batch / c.tp


def sdpa_math_fallback(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """fp32 GQA through PyTorch SDPA with enable_gqa=True (profiles whose ``sdpa_gqa_fp32_math`` holds): no fused
    kernel takes it — flash needs 16-bit inputs, mem-efficient rejects GQA (``check_batch_size_and_num_heads_dense
    <false>`` in sdp_utils.cpp) — so SDPA's math kernel runs and saves, beyond the flash count, the fp32 softmax
    probabilities 4·a·s²·b and K, V repeated to all a heads, minus flash's log-sum-exp:
    (4·a·s² + 2·4·s·(q_width − kv_width) − 4·a·s)·b/t (docs/memory.md §4.2). Dropped by recompute, as eager scores."""
    if not (prof.sdpa_gqa_fp32_math and c.attention == "flash" and c.precision == "fp32"
            and shape.n_kv_heads < shape.n_heads and c.recompute == "none"):
        return 0.0
    s, a = c.seq_len, shape.n_heads
    per_seq = (4 * a * s * s + 2 * _e(c) * s * (shape.q_width - shape.kv_width) - FLASH_LSE_BYTES * a * s)
    return per_seq * c.micro_batch / c.tp


def mlp_intermediates(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """MLP tensors of width f: n·e·s·b·f/t, × top-k for MoE. Gated: the profile's count (4 eager SwiGLU, 3 fused),
    minus 1 when ``down`` needs no gradient; non-gated: activation input + fc2 input (2), or 1 (Korthikanti §4.1 counts
    8sbh + 8sbh for f = 4h, i.e. 2·e·s·b·f; docs/memory.md §4.2). Under FP8 down's input is 1 B (§13.2)."""
    down = "down" in _needs(trainable, adapted)
    k = shape.mlps_per_token  # top-k routed + shared experts for MoE
    if kbit_upcast(c, prof):
        # fp32 outputs of the 4-bit gate/up (Linear4bit .to(inp_dtype)): SiLU saves gate's, the product saves SiLU's
        # and up's (3 x 4 B); non-gated: the activation's fp32 input. down's input: its adapter's copy (lora_...)
        n_f = 3 if shape.gated_mlp else 1
        return k * n_f * FP32_BYTES * c.seq_len * c.micro_batch * shape.ffn / c.tp
    if shape.gated_mlp:
        # frozen gate/up in a fused kernel still keep the fc1 output for the activation's backward
        n_f = prof.gated_mlp_saved - (0 if down else 1)
    else:
        n_f = 1 + (1 if down else 0)
    # the last of them, down's input, is saved by the down GEMM: in FP8 under Transformer Engine (§13.2)
    per = (n_f - 1) * _e(c) + _gemm_input(c) if down else n_f * _e(c)
    return k * per * c.seq_len * c.micro_batch * shape.ffn / c.tp


def lora_intermediates(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Per LoRA-adapted linear: A's output e·s·b·r (saved by B); with lora_dropout > 0 also the dropout output and its
    1-byte mask (e + 1)·s·b·in (PEFT applies dropout to A's input; docs/memory.md §6). × top-k for MoE experts; /t.

    PEFT's bnb.Linear4bit.forward runs ``lora_B(lora_A(dropout(x)))`` per adapter (src/peft/tuners/lora/bnb.py @
    peft 5d602fd); bitsandbytes' MatMul4Bit saves only the packed 4-bit weight, never its input
    (``ctx.tensors = (None, B)``, bitsandbytes/autograd/_functions.py @ 95f9af3). Under :func:`kbit_upcast` every
    adapted linear but ``o`` gets an fp32 input, so its A saves its own autocast bf16 copy, e·s·b·in, with or without
    dropout (the fp32 dropout output is freed after the cast; its 1-byte mask stays); ``o`` reads the bf16 attention
    output as before (docs/memory.md §6.1)."""
    k = shape.mlps_per_token  # top-k routed + shared experts for MoE
    sb = c.seq_len * c.micro_batch
    kbit = kbit_upcast(c, prof)
    total = 0.0
    for name, (i, _o) in shape.linear_shapes().items():
        if name not in adapted:
            continue
        mult = k if name in ("gate", "up", "down") else 1
        total += mult * _e(c) * sb * c.lora_rank
        if kbit and name != "o":
            total += mult * (_e(c) + (DROPOUT_MASK_BYTES if c.lora_dropout > 0 else 0)) * sb * i
        elif c.lora_dropout > 0:
            total += mult * (_e(c) + DROPOUT_MASK_BYTES) * sb * i
    return total / c.tp


def moe_routing(shape: ModelShape, c, prof: Profile, trainable, adapted) -> float:
    """Profiles whose MoE layer loops over experts (``moe_token_copies``; transformers' MixtralSparseMoeBlock.forward,
    models/mixtral/modeling_mixtral.py @ transformers 00d4b3d; docs/memory.md §4.2 MoE). Per token and routed expert
    (k·s·b rows in all):

    - the gathered input ``hidden_states[None, top_x]``, saved by w1 and w3 when they need a gradient: e·h once, or
      e·h per such linear under precision amp (the fp32 residual is cast to bf16 by autocast separately for w1 and
      w3); 0 under :func:`kbit_upcast` (MatMul4Bit saves nothing; the adapters' copies are in lora_intermediates);
    - the expert output multiplied by ``routing_weights[top_x, idx, None]`` (the product saves it for the routing
      weight's gradient): e·h, fp32 (4·h) under :func:`kbit_upcast` (Linear4bit returns its input's dtype);
    - the router: per row top-k index (8), fp32 top-k weight divided in place by its sum (4), its cast to e, the
      per-expert index tensors top_x and idx (2·8; ``index_add_`` saves only its index); per token the fp32 softmax
      output, 4·E.

    /t. 0 for dense models and profiles without the fact."""
    if not (shape.n_experts and prof.moe_token_copies):
        return 0.0
    tokens = c.seq_len * c.micro_batch
    rows = shape.top_k * tokens
    kbit = kbit_upcast(c, prof)
    n_in = len(_needs(trainable, adapted) & {"gate", "up"})
    gathered = 0.0 if kbit else _e(c) * shape.d_model * (n_in if c.precision == "amp" else min(n_in, 1))
    weighted = (FP32_BYTES if kbit else _e(c)) * shape.d_model
    per_row = INDEX_BYTES + FP32_BYTES + _e(c) + 2 * INDEX_BYTES
    return (rows * (gathered + weighted + per_row) + FP32_BYTES * shape.n_experts * tokens) / c.tp


def layer_activation_bytes(shape: ModelShape, c, prof: Profile, trainable: set[str], adapted: set[str]) -> float:
    """Bytes one transformer layer saves for backward, one micro-batch, one TP rank, without full recompute: the sum
    of the components above (docs/memory.md §4.2). ``trainable``: linears trained in full; ``adapted``: LoRA ones."""
    a = (shape, c, prof, trainable, adapted)
    return (norm_inputs(*a) + attention_input(*a) + mlp_input(*a) + dropout_masks(*a)
            + qkv_saved(*a) + attention_output(*a) + flash_softmax_stats(*a) + eager_attention_scores(*a)
            + sdpa_math_fallback(*a)
            + mlp_intermediates(*a) + lora_intermediates(*a) + moe_routing(*a))


# ---------------------------------------------------------------------------- one pipeline stage
def full_recompute_checkpoint(shape: ModelShape, c) -> float:
    """Under full recompute a layer keeps only its input: e·s·b·h (/t with SP) (Chen et al. 2016; Korthikanti §5;
    docs/memory.md §4.3); fp32, 4·s·b·h, under :func:`kbit_upcast` (the residual stream is fp32; §6.1)."""
    return (FP32_BYTES if kbit_upcast(c) else _e(c)) * _sbh(shape, c) / _rep(c)


def checkpoint_on_gpu(shape: ModelShape, c) -> float:
    """One layer's full-recompute checkpoint as the GPU holds it: 0 under ``activation_offload`` (torchtune's
    OffloadActivations copies each saved tensor to pinned CPU memory in forward and back in backward, one layer at a
    time: training/_activation_offloading.py @ torchtune bd2a0fc), else :func:`full_recompute_checkpoint` (§4.3)."""
    return 0.0 if c.activation_offload else full_recompute_checkpoint(shape, c)


def layers_on_stage(shape: ModelShape, c, per_layer: float) -> float:
    """Activation bytes of the L/p layers of one stage for one micro-batch: every layer's set, or under full recompute
    one checkpoint per layer + one layer's set rematerialised during its backward (docs/memory.md §4.3)."""
    n = shape.n_layers // c.pp
    if c.recompute == "full":
        return n * checkpoint_on_gpu(shape, c) + per_layer
    return n * per_layer


def in_flight_microbatches(c) -> int:
    """Micro-batches whose activations the first pipeline stage holds under 1F1B: min(p, m), 1 without PP (Narayanan
    et al. 2021 §2.2; Korthikanti §4.2.3; docs/memory.md §4.4)."""
    return min(c.pp, max(c.grad_accum, 1)) if c.pp > 1 else 1


def embedding_dropout_mask(shape: ModelShape, c) -> float:
    """The embedding output's dropout mask, 1 byte per element, with dropout > 0: s·b·h (/t with SP; docs/memory.md
    §4.4)."""
    return DROPOUT_MASK_BYTES * _sbh(shape, c) / _rep(c) if c.dropout > 0 else 0.0


def final_norm_and_head_inputs(shape: ModelShape, c, prof: Profile) -> float:
    """Last stage: the final norm's input (e + profile extra)·s·b·h and, in a full fine-tune, the LM head's input
    e·s·b·h (/t with SP; docs/memory.md §4.4)."""
    head = _e(c) * _sbh(shape, c) if c.method == "full" else 0.0
    return ((_e(c) + prof.norm_extra_bytes) * _sbh(shape, c) + head) / _rep(c)


def logit_bytes_per_element(c, prof: Profile) -> float:
    """Bytes per logit element alive at the forward/backward boundary: the profile's, or the chunked-CE allowance."""
    return CHUNKED_CE_LOGIT_BYTES if c.chunked_ce else prof.logits_bytes


def logits(shape: ModelShape, c, prof: Profile) -> float:
    """Cross-entropy working set on the last stage: (bytes per logit)·s·b·V/t, vocabulary-parallel (docs/memory.md
    §5)."""
    return logit_bytes_per_element(c, prof) * c.seq_len * c.micro_batch * shape.vocab / c.tp


def activation_terms(shape: ModelShape, c, prof: Profile, trainable, adapted):
    """(first stage, last stage, logits, one layer) activation bytes on one rank (docs/memory.md §4.4, §5).

    The first stage holds :func:`in_flight_microbatches` micro-batches of its layers and embedding mask; the last
    stage one micro-batch of its layers plus the final-norm and head inputs; logits are the last stage's. With p = 1
    both are the one stage (its final-norm/head inputs are then not added; §4.4)."""
    per_layer = layer_activation_bytes(shape, c, prof, trainable, adapted)
    layers = layers_on_stage(shape, c, per_layer)
    first = in_flight_microbatches(c) * (layers + embedding_dropout_mask(shape, c))
    last = layers + final_norm_and_head_inputs(shape, c, prof)
    return first, last, logits(shape, c, prof), per_layer
