"""QLoRA as transformers + PEFT + bitsandbytes run it, paged optimizers, and transformers' MoE loop (issue 12 items
2-4; docs/memory.md §6.1, §1 paged optimizers, §4.2 MoE), each against a hand calculation on a toy shape from the
op list of the code that runs:

- peft src/peft/utils/other.py (prepare_model_for_kbit_training) and src/peft/tuners/lora/bnb.py (Linear4bit.forward)
  @ huggingface/peft 5d602fdbff04c33c1c4de55cda9d4ae1d7cb7e40;
- bitsandbytes/nn/modules.py (Linear4bit.forward), bitsandbytes/autograd/_functions.py (MatMul4Bit),
  bitsandbytes/optim/optimizer.py (get_state_buffer, init_state), bitsandbytes/functional.py (get_paged) and
  csrc/pythonInterface.cpp (cget_managed_ptr: cudaMallocManaged) @ bitsandbytes-foundation/bitsandbytes
  95f9af309d4d5793847169c39288dcd3fcbdf564;
- src/transformers/models/mixtral/modeling_mixtral.py (MixtralSparseMoeBlock.forward, MixtralRMSNorm) @
  huggingface/transformers 00d4b3d2142cb4ced2f51b90614b5d26bc045015.
"""

from dataclasses import replace

import pytest

from scaling_planner.memory import (
    PROFILES,
    MemoryConfig,
    activation_terms,
    estimate_memory,
    layer_activation_bytes,
)
from scaling_planner.model import LINEARS, ModelShape
from scaling_planner.units import GIB

from .test_memory_mechanisms import KVW, QW, TOY, A, F, H, L, V  # the toy shape and its dimensions

S, B = 32, 2
SB = S * B
SBH = SB * H
R = 16
ALL = set(LINEARS)
HF = PROFILES["hf"]


def cfg(name="hf", **kw):
    return MemoryConfig(framework=name, **{"seq_len": S, "micro_batch": B, **kw}).resolved()


def qlora(**kw):
    return cfg(method="qlora", lora_targets=tuple(LINEARS), **kw)


def kbit_layer_by_hand(dropout: bool) -> float:
    """One layer, QLoRA on all seven linears, hf (prepare_model_for_kbit_training + autocast bf16), flash attention."""
    e = 2
    mask = 1 if dropout else 0
    return (2 * 4 * SBH  # two RMSNorms: the fp32 residual input (pow/mul); the frozen fp32 weight's product saves none
            + e * SB * (QW + 2 * KVW)  # q, k, v cast to bf16 by autocast for the attention kernel
            + e * SB * QW  # attention output (bf16), also o's LoRA A input
            + 4 * A * SB  # flash log-sum-exp
            + 3 * 4 * SB * F  # fp32 gate/up outputs (Linear4bit .to(inp_dtype)): SiLU input, SiLU output, up output
            + 7 * e * SB * R  # each A's bf16 output, saved by B
            + 3 * (e + mask) * SBH  # q, k, v: each A's own autocast bf16 copy of the fp32 norm output (+ mask)
            + 2 * (e + mask) * SBH  # gate, up: the same for the second norm's output
            + (e + mask) * SB * F  # down: bf16 copy of the fp32 product (+ mask)
            + (e + mask) * SB * QW * mask)  # o: bf16 input shared with the attention output; dropout makes a copy


@pytest.mark.parametrize("dropout", [False, True])
def test_qlora_kbit_layer_by_hand(dropout):
    c = qlora(lora_dropout=0.05 if dropout else 0.0)
    assert layer_activation_bytes(TOY, c, HF, set(), ALL) == pytest.approx(kbit_layer_by_hand(dropout), rel=1e-12)


def test_qlora_kbit_only_under_hf_amp():
    # generic has no prepare_model_for_kbit_training fact: the 16-bit LoRA accounting (shared norm outputs)
    gen = layer_activation_bytes(TOY, cfg("generic", method="qlora", lora_targets=tuple(LINEARS)), PROFILES["generic"],
                                 set(), ALL)
    lora = layer_activation_bytes(TOY, cfg("generic", method="lora", lora_targets=tuple(LINEARS)), PROFILES["generic"],
                                  set(), ALL)
    assert gen == pytest.approx(lora, rel=1e-12)
    # hf LoRA (16-bit base, no upcast) keeps the old accounting: norm (4 + 2) B, one shared input per norm
    hf_lora = layer_activation_bytes(TOY, cfg(method="lora", lora_targets=tuple(LINEARS)), HF, set(), ALL)
    assert hf_lora < layer_activation_bytes(TOY, qlora(), HF, set(), ALL)


def test_qlora_kbit_weights_fp32_unquantised():
    # prepare_model_for_kbit_training: "cast all non INT8 parameters to fp32" -> embedding, head, norms at 4 B
    est = estimate_memory(TOY, qlora())
    split = L * (4 * H * QW - 2 * H * (QW - KVW) + 3 * H * F)  # q,k,v,o + gated MLP (no biases)
    n = TOY.params_total
    lora_n = L * R * ((H + QW) + 2 * (H + KVW) + (QW + H) + 3 * (H + F))
    w = est.assumptions["model_states_gib"]["weights"] * GIB
    assert w == pytest.approx((0.5 + 0.127 / 8) * split + 4 * (n - split) + 4 * lora_n, rel=1e-9)


def test_qlora_kbit_full_recompute_checkpoint_fp32():
    # full recompute keeps each layer's input: the residual stream, fp32 after the upcast (4·s·b·h per layer)
    c = qlora(recompute="full")
    first, _last, _logits, per = activation_terms(TOY, c, HF, set(), ALL)
    assert per == pytest.approx(kbit_layer_by_hand(False), rel=1e-12)
    assert first == pytest.approx(L * 4 * SBH + kbit_layer_by_hand(False), rel=1e-12)


def test_qlora_kbit_head_cast_copy_in_forward():
    # forward end: weights + adapter AdamW states + activations + fp32 logits (12 B, hf) + the dequantised 16-bit
    # copy of the largest linear (2·h·f) + autocast's bf16 copy of the fp32 LM head saved by the head GEMM (2·V·h)
    c = qlora()
    est = estimate_memory(TOY, c)
    ms = {k: v * GIB for k, v in est.assumptions["model_states_gib"].items()}
    first, _l, logits, _ = activation_terms(TOY, c, HF, set(), ALL)
    assert logits == pytest.approx(12 * SB * V, rel=1e-12)
    expected = ms["weights"] + ms["optimizer"] + first + logits + 2 * H * F + 2 * V * H
    assert est.phases["forward_end"] == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------- paged optimizers
# Wider toy: gate/up/down (256 x 512 = 131,072) and embedding/head (2000 x 256) reach bitsandbytes' 1e5-element paging
# threshold; q/o (65,536), k/v (32,768) and the norms do not and stay torch tensors.
WIDE = ModelShape(vocab=2000, d_model=256, n_layers=2, n_heads=4, n_kv_heads=2, ffn=512, name="wide")
WH, WF, WV, WL = 256, 512, 2000, 2
W_PAGED = WL * 3 * WH * WF + 2 * WV * WH  # paged parameters: MLP linears + embedding + untied head


@pytest.mark.parametrize("opt, per", [("paged-adamw-32bit", 8.0), ("paged-adamw-8bit", 2.0)])
def test_paged_states_in_device_not_allocated(opt, per):
    c = cfg(precision="bf16", optimizer=opt, fragmentation=0.1, cuda_context_gib=0.5)
    est = estimate_memory(WIDE, c)
    paged = per * W_PAGED
    assert est.assumptions["paged_optimizer_gib"] * GIB == pytest.approx(paged, rel=1e-12)
    n = WIDE.params_total
    opt_b = 8.0 if opt == "paged-adamw-32bit" else 2 * (1 + 4 / 256)  # fp32 states / uint8 + fp32 absmax
    assert est.assumptions["model_states_gib"]["optimizer"] * GIB == pytest.approx(opt_b * n, rel=1e-9)
    first, _l, logits, one_layer = activation_terms(WIDE, c, HF, ALL, set())
    fwd = 2 * n + opt_b * n + first + logits  # bf16 weights, no grads alive in forward (set_to_none)
    bwd = 2 * n + 2 * n + opt_b * n + one_layer  # bf16 gradients + the last layer's activations
    step = 2 * n + 2 * n + opt_b * n  # no step temporary: bitsandbytes' fused kernel
    alloc = max(fwd, bwd, step) - paged
    assert est.allocated == pytest.approx(alloc, rel=1e-9)
    assert est.reserved == pytest.approx(alloc * 1.1, rel=1e-9)
    assert est.device == pytest.approx(alloc * 1.1 + 0.5 * GIB + paged, rel=1e-9)
    dev = estimate_memory(WIDE, replace(c, peak_kind="device"))
    assert dev.breakdown["paged_optimizer"] == pytest.approx(paged, rel=1e-12)
    assert sum(dev.breakdown.values()) == pytest.approx(dev.device, rel=1e-9)
    assert sum(est.breakdown.values()) == pytest.approx(est.total, rel=1e-9)


def test_paged_lora_only_large_adapter_tensors():
    # LoRA r 16 on q and up: A_q 16x256, B_q 256x16 (4,096 each), A_up 16x256, B_up 512x16 — none reaches 1e5, so
    # nothing is paged; at r 256 B_up (512 x 256 = 131,072) does
    small = estimate_memory(WIDE, cfg(method="lora", lora_targets=("q", "up"), optimizer="paged-adamw-32bit"))
    assert small.assumptions["paged_optimizer_gib"] == 0
    big = estimate_memory(WIDE, cfg(method="lora", lora_rank=256, lora_targets=("q", "up"),
                                    optimizer="paged-adamw-32bit"))
    assert big.assumptions["paged_optimizer_gib"] * GIB == pytest.approx(8 * WL * WF * 256, rel=1e-12)
    assert big.device - big.reserved == pytest.approx(8 * WL * WF * 256 + big.config.cuda_context_gib * GIB, rel=1e-9)


# ---------------------------------------------------------------------------- MoE in transformers
MOE = replace(TOY, n_experts=4, top_k=2, name="toy-moe")


def test_hf_moe_loop_by_hand():
    # MixtralSparseMoeBlock.forward, full fine-tune under autocast (precision amp, fp32 residual), top-2 of 4 experts:
    # per routed row (2·s·b rows) each expert's gathered tokens cast to bf16 separately by w1 and w3 (2 x 2·h), its
    # output saved by the routing-weight product (2·h), and the router's per-row tensors: top-k index (8), fp32 weight
    # (4), its bf16 cast (2), top_x and idx (2 x 8); per token the fp32 softmax (4·E)
    e = 2
    dense = (2 * (e + 4) * SBH + e * SBH + e * SBH + e * SB * (QW + 2 * KVW) + e * SB * QW + 4 * A * SB
             + 4 * e * SB * F)
    experts_extra = (2 - 1) * 4 * e * SB * F  # the second routed expert's gated-MLP tensors
    rows = 2 * SB
    loop = rows * (2 * e * H + e * H + 8 + 4 + 2 + 16) + 4 * 4 * SB
    got = layer_activation_bytes(MOE, cfg(), HF, ALL, set())
    assert got == pytest.approx(dense + experts_extra + loop, rel=1e-12)
    # bf16 (no autocast, 16-bit residual): w1 and w3 share one gathered copy
    got16 = layer_activation_bytes(MOE, cfg(precision="bf16"), HF, ALL, set())
    loop16 = rows * (e * H + e * H + 30) + 16 * SB
    assert got16 == pytest.approx(dense + experts_extra + loop16, rel=1e-12)
    # megatron has its own MoE path: no loop copies
    meg = PROFILES["megatron"]
    assert layer_activation_bytes(MOE, cfg("megatron"), meg, ALL, set()) == pytest.approx(
        layer_activation_bytes(MOE, cfg("megatron"), replace(meg, moe_token_copies=True), ALL, set())
        - loop16, rel=1e-12)
