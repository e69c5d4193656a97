"""Each memory mechanism against an independent hand calculation on a toy shape (docs/memory.md).

Every expected value below is written out from the formula in docs/memory.md (section named in each test) with the
stack facts copied from the profile table of docs/memory.md §11, not read from the code. Together with the published
numbers of tests/test_memory.py these kill every mutation in tests/mutations/memory.py
(``python -m tests.mutations memory.``).
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

# Toy Llama-like shape: V 1000, h 64, L 4, a 4 query heads, k 2 KV heads (d_h 16), gated MLP f 160, RMSNorm, no
# biases, untied embeddings.
TOY = ModelShape(vocab=1000, d_model=64, n_layers=4, n_heads=4, n_kv_heads=2, ffn=160, name="toy")
V, H, L, A, QW, KVW, F = 1000, 64, 4, 4, 64, 32, 160
S, B = 32, 2  # seq_len, micro_batch
SBH = S * B * H
# Parameter counts by hand (docs/memory.md §9): attention h·q_w + 2·h·kv_w + q_w·h, gated MLP 3·h·f, 2 RMSNorms.
ATTN = H * QW + 2 * H * KVW + QW * H  # 12,288
MLP = 3 * H * F  # 30,720
LAYER = ATTN + MLP + 2 * H  # 43,136
N = 2 * V * H + L * LAYER + H  # embedding + untied head + layers + final norm = 300,608
SPLIT = L * (LAYER - 2 * H)  # TP-split block parameters (docs/memory.md §2)
# LoRA r = 16 on all seven linears: r·(in + out) per linear (docs/memory.md §6)
LORA_ALL = 16 * ((H + QW) + 2 * (H + KVW) + (QW + H) + 3 * (H + F))
LORA_N = L * LORA_ALL

# docs/memory.md §11 table: precision; norm extra B; gated-MLP tensors; logit B; eager score B; adapters w/g/o;
# step temporary; persistent grads; DDP bucket copy; DeepSpeed buckets; fp32 grad partition; activation factor.
FACTS = {
    "generic": ("mixed", 0, 4, 8, 2, (4, 4, 8), True, False, False, False, False, 1.0),
    "hf": ("amp", 4, 4, 12, 6, (4, 4, 8), True, False, True, False, False, 1.0),
    "torchtune": ("bf16", 4, 4, 6, 2, (2, 2, 4), True, False, False, False, False, 1.0),
    "megatron": ("mixed-fp32-grads", 0, 3, 6, 2, (4, 4, 8), False, True, False, False, False, 1.05),
    "deepspeed": ("mixed", 4, 4, 12, 6, (4, 4, 8), False, True, False, True, True, 1.0),
}
NAMES = list(FACTS)
# docs/memory.md §1: weight, grad, optimizer incl. master (AdamW), one optimizer state, bytes per parameter.
PRECISION_BYTES = {"mixed": (2, 2, 12, 4), "amp": (4, 4, 8, 4), "bf16": (2, 2, 4, 2), "mixed-fp32-grads": (2, 4, 12, 4),
                   "fp32": (4, 4, 8, 4)}
FULL = set(LINEARS)


def fact(name, i):
    return FACTS[name][i]


def cfg(name="generic", **kw):
    kw = {"seq_len": S, "micro_batch": B, **kw}
    return MemoryConfig(framework=name, **kw).resolved()


def layer(name="generic", trainable=FULL, adapted=(), **kw):
    return layer_activation_bytes(TOY, cfg(name, **kw), PROFILES[name], set(trainable), set(adapted))


def per_layer_by_hand(name, e=2):
    """docs/memory.md §4.2, full fine-tune, flash attention, no dropout, one TP rank."""
    nx, nf = fact(name, 1), fact(name, 2)
    return (2 * (e + nx) * SBH  # two RMSNorm inputs, activation dtype + the profile's extra bytes
            + e * SBH + e * SBH  # attention input (saved by q,k,v) and MLP input (saved by gate, up)
            + e * S * B * (QW + 2 * KVW)  # q, k, v saved by the attention kernel (GQA: kv_width)
            + e * S * B * QW  # attention output
            + 4 * A * S * B  # flash attention's fp32 log-sum-exp
            + nf * e * S * B * F)  # gated-MLP tensors of width f


def states_bytes(est):
    return {k: v * GIB for k, v in est.assumptions["model_states_gib"].items()}


def test_toy_parameter_count():
    assert TOY.params_total == N == 300_608


# ---------------------------------------------------------------------------- activations (§4, §5)
@pytest.mark.parametrize("name", NAMES)
def test_layer_activations_by_hand(name):
    assert layer(name) == pytest.approx(per_layer_by_hand(name), rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_layer_activations_tp_sp(name):
    # §4.2: the attention and MLP internals are split over TP; the norm / block inputs only with SP.
    e, nx, nf = 2, fact(name, 1), fact(name, 2)
    rep = 2 * (e + nx) * SBH + 2 * e * SBH
    split = e * S * B * (QW + 2 * KVW) + e * S * B * QW + 4 * A * S * B + nf * e * S * B * F
    assert layer(name, tp=2, gpus=2) == pytest.approx(rep + split / 2, rel=1e-12)
    assert layer(name, tp=2, gpus=2, sp=True) == pytest.approx((rep + split) / 2, rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_eager_attention_scores(name):
    # §4.2: eager attention saves (profile score bytes)·a·s²·b instead of flash's 4·a·s·b; with dropout also a 1-byte
    # mask and the e-byte dropout output per score, and two 1-byte residual dropout masks 2·s·b·h.
    eager_b = fact(name, 4)
    flash = per_layer_by_hand(name)
    assert layer(name, attention="eager") == pytest.approx(flash - 4 * A * S * B + eager_b * A * S * S * B, rel=1e-12)
    assert layer(name, attention="eager", dropout=0.1) == pytest.approx(
        flash - 4 * A * S * B + (eager_b + 1 + 2) * A * S * S * B + 2 * SBH, rel=1e-12)
    # §4.3: selective (and full) recompute drop the s² tensors
    assert layer(name, attention="eager", recompute="selective") == pytest.approx(flash - 4 * A * S * B, rel=1e-12)


def test_dropout_masks():
    # §4.2: two residual dropout masks, 1 byte per element
    assert layer(dropout=0.1) - layer() == pytest.approx(2 * SBH, rel=1e-12)


def test_lora_intermediates_and_frozen_inputs():
    # §4.2 / §6: LoRA r = 8 on q, v only, lora_dropout 0.05, generic profile. Frozen o, gate, up, down save nothing
    # of their own: no MLP input; the gated MLP keeps 4 - 1 = 3 f-wide tensors (down needs no gradient). Each adapted
    # module adds A's output e·s·b·r and the dropout output + 1-byte mask (e + 1)·s·b·in.
    e, r = 2, 8
    expected = (2 * e * SBH + e * SBH  # norms, attention input (q and v need it)
                + e * S * B * (QW + 2 * KVW) + e * S * B * QW + 4 * A * S * B
                + 3 * e * S * B * F
                + 2 * (e * S * B * r + (e + 1) * S * B * H))  # q and v adapters, in = h
    got = layer(trainable=(), adapted={"q", "v"}, method="lora", lora_rank=r, lora_targets=("q", "v"),
                lora_dropout=0.05)
    assert got == pytest.approx(expected, rel=1e-12)


def terms(name="generic", **kw):
    return activation_terms(TOY, cfg(name, **kw), PROFILES[name], FULL, set())


@pytest.mark.parametrize("name", NAMES)
def test_stage_terms_and_logits(name):
    # §4.4, §5: with p = 2 the first stage holds min(p, m) = 1 micro-batch of its L/p = 2 layers; the last stage adds
    # the final-norm input (e + extra)·s·b·h and the LM-head input e·s·b·h; logits = (bytes per logit)·s·b·V/t.
    e, nx, logit_b = 2, fact(name, 1), fact(name, 3)
    first, last, logits, one = terms(name, pp=2, gpus=2)
    per = per_layer_by_hand(name)
    assert one == pytest.approx(per, rel=1e-12)
    assert first == pytest.approx(2 * per, rel=1e-12)
    assert last == pytest.approx(2 * per + (e + nx) * SBH + e * SBH, rel=1e-12)
    assert logits == pytest.approx(logit_b * S * B * V, rel=1e-12)
    assert terms(name, tp=2, gpus=2)[2] == pytest.approx(logit_b * S * B * V / 2, rel=1e-12)
    assert terms(name, chunked_ce=True)[2] == pytest.approx(0.5 * S * B * V, rel=1e-12)  # §5 chunk allowance


def test_pipeline_in_flight_and_embedding_mask():
    # §4.4, 1F1B: p = 4 (one layer per stage), m = 3 micro-batches -> the first stage holds min(4, 3) = 3 of them,
    # each with its layer and the embedding's 1-byte dropout mask s·b·h.
    per = layer(dropout=0.1)
    first, *_ = terms(pp=4, gpus=4, grad_accum=3, dropout=0.1)
    assert first == pytest.approx(3 * (per + SBH), rel=1e-12)
    first8, *_ = terms(pp=4, gpus=4, grad_accum=8)
    assert first8 == pytest.approx(4 * layer(), rel=1e-12)


def test_full_recompute():
    # §4.3: each layer keeps its input e·s·b·h; one layer's full set is rematerialised during its backward.
    first, *_ = terms(recompute="full")
    assert first == pytest.approx(L * 2 * SBH + per_layer_by_hand("generic"), rel=1e-12)


# ---------------------------------------------------------------------------- model states (§1, §2, §3, §6)
@pytest.mark.parametrize("name", NAMES)
def test_default_precision_state_bytes(name):
    # §1 with §11's default precision; one GPU, ZeRO-0
    w, g, o, _ = PRECISION_BYTES[fact(name, 0)]
    st = states_bytes(estimate_memory(TOY, cfg(name)))
    assert st == pytest.approx({"weights": w * N, "gradients": g * N, "optimizer": o * N}, rel=1e-9)


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_zero_sharding(zero):
    # §2: ZeRO-1 shards the optimizer (12 B), ZeRO-2 also the gradients (2 B), ZeRO-3 also the weights (2 B); d = 4.
    st = states_bytes(estimate_memory(TOY, cfg(gpus=4, zero=zero)))
    d = 4
    assert st == pytest.approx({"weights": 2 * N / (d if zero >= 3 else 1),
                                "gradients": 2 * N / (d if zero >= 2 else 1),
                                "optimizer": 12 * N / (d if zero >= 1 else 1)}, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_fp32_gradient_partition(name):
    # §1 / §11.5: with 16-bit gradients and ZeRO >= 1, DeepSpeed's optimizer adds an fp32 gradient partition (4 B)
    st = states_bytes(estimate_memory(TOY, cfg(name, precision="mixed", zero=1, gpus=2)))
    assert st["optimizer"] == pytest.approx((12 + (4 if fact(name, 10) else 0)) * N / 2, rel=1e-9)


@pytest.mark.parametrize("name", ["generic", "deepspeed"])
def test_offload(name):
    # §3: optimizer offload moves the optimizer states and the gradient partition to the CPU (fp32 gradients, 4 B,
    # unless the profile's fp32 partition is already in the optimizer bytes); CPU per node x GPUs x 1.5 (DeepSpeed's
    # additional_buffer_factor). params offload (ZeRO-3) also moves the weights.
    d = 2
    opt = 12 + (4 if fact(name, 10) else 0)
    est = estimate_memory(TOY, cfg(name, gpus=d, zero=2, offload="optimizer"))
    assert states_bytes(est) == pytest.approx({"weights": 2 * N, "gradients": 0, "optimizer": 0}, abs=1e-3)
    cpu = opt * N / d + (0 if fact(name, 10) else 4 * N / d)
    assert est.cpu_bytes == pytest.approx(cpu * d * 1.5, rel=1e-9)
    est = estimate_memory(TOY, cfg(name, gpus=d, zero=3, offload="params"))
    assert states_bytes(est) == pytest.approx({"weights": 0, "gradients": 0, "optimizer": 0}, abs=1e-3)
    assert est.cpu_bytes == pytest.approx((cpu + 2 * N / d) * d * 1.5, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_lora_adapter_bytes(name):
    # §6: frozen 16-bit base (2 B, also under amp), adapters at the profile's weight/grad/AdamW bytes (§11)
    aw, ag, ao = fact(name, 5)
    st = states_bytes(estimate_memory(TOY, cfg(name, method="lora")))
    assert st == pytest.approx({"weights": 2 * N + aw * LORA_N, "gradients": ag * LORA_N,
                                "optimizer": ao * LORA_N}, rel=1e-9)
    st = states_bytes(estimate_memory(TOY, cfg(name, method="lora", lora_dtype="bf16")))
    assert st["optimizer"] == pytest.approx(4 * LORA_N, rel=1e-9)


def test_qlora_nf4_weights():
    # §6, QLoRA §3 (Dettmers et al. 2023): NF4 + double quantisation = 4 bits + 0.127 bits of constants per
    # parameter on the split linears; embeddings, head and norms stay 16-bit; fp32 adapters (generic).
    st = states_bytes(estimate_memory(TOY, cfg(method="qlora")))
    assert st["weights"] == pytest.approx((0.5 + 0.127 / 8) * SPLIT + 2 * (N - SPLIT) + 4 * LORA_N, rel=1e-9)


def test_8bit_adamw_state_bytes():
    # §1, bitsandbytes Optimizer2State: two uint8 states + one fp32 absmax per 256-element block each, plus the
    # fp32 master of `mixed`
    st = states_bytes(estimate_memory(TOY, cfg(optimizer="adamw-8bit")))
    assert st["optimizer"] == pytest.approx((4 + 2 * (1 + 4 / 256)) * N, rel=1e-9)


# ---------------------------------------------------------------------------- buffers, phases, overhead (§7)
@pytest.mark.parametrize("name", NAMES)
def test_optimizer_step_temporary(name):
    # §7: foreach AdamW allocates one optimizer-state-sized temporary (state bytes x trainable params) at the step
    w, g, o, state = PRECISION_BYTES[fact(name, 0)]
    est = estimate_memory(TOY, cfg(name))
    temp = state * N if fact(name, 6) else 0
    assert est.phases["optimizer_step"] == pytest.approx((w + g + o) * N + temp, rel=1e-9)
    est = estimate_memory(TOY, cfg(name, gpus=2, zero=1))  # the temporary shards with the optimizer
    opt = o + (4 if fact(name, 10) and g < 4 else 0)
    assert est.phases["optimizer_step"] == pytest.approx((w + g) * N + opt * N / 2 + temp / 2, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_alive_in_forward(name):
    # §7: gradients count at the end of forward with a persistent buffer, or with gradient accumulation
    g = PRECISION_BYTES[fact(name, 0)][1]
    one = estimate_memory(TOY, cfg(name, grad_accum=1)).phases["forward_end"]
    two = estimate_memory(TOY, cfg(name, grad_accum=2)).phases["forward_end"]
    assert two - one == pytest.approx(0 if fact(name, 7) else g * N, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_ddp_bucket_copy(name):
    # §7 / §11.2: DDP without gradient_as_bucket_view copies the gradients once more in backward (ZeRO-0, d > 1)
    g = PRECISION_BYTES[fact(name, 0)][1]
    one = estimate_memory(TOY, cfg(name, gpus=1)).phases["backward_end"]
    two = estimate_memory(TOY, cfg(name, gpus=2)).phases["backward_end"]
    assert two - one == pytest.approx(g * N if fact(name, 8) else 0, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_deepspeed_buckets(name, monkeypatch):
    # §7 / §11.5: ZeRO-1/2 reduce bucket min(5e8, trainable)·grad bytes + all-gather bucket min(5e8, params)·weight
    # bytes in backward; the toy model is below 5e8, so (2 + 2)·N under `mixed`.
    c = cfg(name, precision="mixed", gpus=2, zero=1)
    with_fact = estimate_memory(TOY, c).phases["backward_end"]
    monkeypatch.setitem(PROFILES, name, replace(PROFILES[name], ds_buckets=False))
    without = estimate_memory(TOY, c).phases["backward_end"]
    assert with_fact - without == pytest.approx((2 + 2) * N if fact(name, 9) else 0, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_activation_factor(name, monkeypatch):
    # §7, §11.4: activations and logits at the end of forward x the profile's factor (Megatron's 1.05)
    act = L * per_layer_by_hand(name) + fact(name, 3) * S * B * V  # p = 1: all layers + logits
    c = cfg(name)
    with_fact = estimate_memory(TOY, c).phases["forward_end"]
    monkeypatch.setitem(PROFILES, name, replace(PROFILES[name], activation_factor=1.0))
    plain = estimate_memory(TOY, c).phases["forward_end"]
    assert with_fact - plain == pytest.approx((fact(name, 11) - 1) * act, rel=1e-9, abs=1e-6)


def test_forward_end_by_hand_amp():
    # §7, hf profile (amp): weights 4 B + AdamW 8 B, no gradients alive, activations + 12 B logits, and autocast's
    # 16-bit copies of the TP-split, embedding and head weights (2 B each).
    est = estimate_memory(TOY, cfg("hf"))
    act = L * per_layer_by_hand("hf") + 12 * S * B * V
    assert est.phases["forward_end"] == pytest.approx(4 * N + 8 * N + act + 2 * (SPLIT + 2 * V * H), rel=1e-9)


def test_backward_end_by_hand_zero3():
    # §7, generic, ZeRO-3 over 2: sharded states, one layer's activations, gather buffers 2 x 2 B x one layer's
    # parameters (current + prefetched layer) + one layer's 2-byte gradients.
    est = estimate_memory(TOY, cfg(gpus=2, zero=3))
    expected = 16 * N / 2 + per_layer_by_hand("generic") + 2 * 2 * LAYER + 2 * LAYER
    assert est.phases["backward_end"] == pytest.approx(expected, rel=1e-9)


def test_qlora_dequantised_buffer():
    # §7: QLoRA keeps one dequantised 16-bit copy of the largest linear (gate/up/down: 64 x 160) in forward
    c = cfg(method="qlora")
    est = estimate_memory(TOY, c)
    st = states_bytes(est)
    first, _last, logits, _ = activation_terms(TOY, c, PROFILES["generic"], set(), set(LINEARS))
    expected = st["weights"] + st["optimizer"] + first + logits + 2 * H * F
    assert est.phases["forward_end"] == pytest.approx(expected, rel=1e-9)


def test_reserved_and_device_overhead():
    # §0, §7: reserved = allocated x (1 + fragmentation); device = reserved + CUDA context
    est = estimate_memory(TOY, cfg(fragmentation=0.2, cuda_context_gib=2.5))
    assert est.reserved == pytest.approx(est.allocated * 1.2, rel=1e-12)
    assert est.device == pytest.approx(est.allocated * 1.2 + 2.5 * GIB, rel=1e-12)
    inf = estimate_memory(TOY, cfg(fragmentation=0.2, cuda_context_gib=2.5, inference=True))
    assert inf.device == pytest.approx(inf.allocated * 1.2 + 2.5 * GIB, rel=1e-12)


# ---------------------------------------------------------------------------- notes (§11)
def test_notes_follow_the_facts_that_act():
    # the notes on LoRA adapters / eager scores appear only when those facts act on the estimate
    full = estimate_memory(TOY, cfg("hf")).assumptions["profile_notes"]
    lora = estimate_memory(TOY, cfg("hf", method="lora", attention="eager")).assumptions["profile_notes"]
    notes = PROFILES["hf"].notes
    assert notes["adapter_bytes"] not in full and notes["eager_score_bytes"] not in full
    assert notes["adapter_bytes"] in lora and notes["eager_score_bytes"] in lora
    for p in PROFILES.values():
        assert set(p.notes) <= {f for f in p.__dataclass_fields__} - {"name", "notes"}


# ---------------------------------------------------------------------------- FP8, Transformer Engine (§13)
FP8_GEMM = L * (ATTN + MLP)  # §13.1: the layer linears (no biases in TOY); embedding and LM head stay 16-bit


def fp8_layer_by_hand(e=2, nf=3):
    """docs/memory.md §13.2 on §4.2, megatron profile: the QKV and fc1 inputs (outputs of the fused norms) and
    down's input are saved as one FP8 copy (1 B); o_proj saves an FP8 copy of the attention output besides the
    kernel's 16-bit one; norms, q/k/v, the SwiGLU input (2 x f) and the log-sum-exp stay as in bf16."""
    return (2 * e * SBH  # two norm inputs (16-bit, saved by LayerNormLinear for the norm backward)
            + 1 * SBH + 1 * SBH  # attention input and MLP input in FP8
            + e * S * B * (QW + 2 * KVW)  # q, k, v saved by the attention kernel
            + (e + 1) * S * B * QW  # attention output: kernel's 16-bit copy + o_proj's FP8 copy
            + 4 * A * S * B  # flash log-sum-exp
            + ((nf - 1) * e + 1) * S * B * F)  # SwiGLU input 2 x f in 16 bit, down's input 1 x f in FP8


def test_fp8_layer_activations_by_hand():
    assert layer("megatron", precision="fp8") == pytest.approx(fp8_layer_by_hand(), rel=1e-12)
    # fewer than bf16 mixed precision (megatron's default) by 1 + 1 - 1 sbh and f·s·b
    bf16 = layer("megatron")
    assert bf16 == pytest.approx(per_layer_by_hand("megatron"), rel=1e-12)
    assert bf16 - layer("megatron", precision="fp8") == pytest.approx(SBH + S * B * F, rel=1e-12)
    # TP 2 + SP: the replicated inputs (norms, attention and MLP inputs) are split as well
    rep = 2 * 2 * SBH + SBH + SBH
    assert layer("megatron", precision="fp8", tp=2, gpus=2, sp=True) == pytest.approx(fp8_layer_by_hand() / 2,
                                                                                       rel=1e-12)
    assert layer("megatron", precision="fp8", tp=2, gpus=2) == pytest.approx(
        rep + (fp8_layer_by_hand() - rep) / 2, rel=1e-12)


def test_fp8_estimate_by_hand():
    # §13.1: FP8 copy (row-wise + transpose, 2 B) of each FP8-GEMM weight, alive in every phase; the model states
    # are those of mixed-fp32-grads (2 + 4 + 12 B/param); megatron: grads persistent, logits 6 B, activations x1.05
    est = estimate_memory(TOY, cfg("megatron", precision="fp8"))
    assert FP8_GEMM == 172_032
    assert est.breakdown["fp8_weights"] == pytest.approx(2 * FP8_GEMM, rel=1e-12)
    states = states_bytes(est)
    assert states == pytest.approx({"weights": 2 * N, "gradients": 4 * N, "optimizer": 12 * N}, rel=1e-12)
    act = L * fp8_layer_by_hand() + 6 * S * B * V
    assert est.phases["forward_end"] == pytest.approx(18 * N + 1.05 * act + 2 * FP8_GEMM, rel=1e-9)
    assert est.phases["backward_end"] == pytest.approx(18 * N + 1.05 * fp8_layer_by_hand() + 2 * FP8_GEMM,
                                                       rel=1e-9)
    assert est.phases["optimizer_step"] == pytest.approx(18 * N + 2 * FP8_GEMM, rel=1e-9)
    a = est.assumptions["fp8"]
    assert (a["gemm_weights_on_rank"], a["weight_copy_bytes"], a["gemm_input_bytes"]) == (FP8_GEMM, 2, 1)
    # TP 2: each rank holds half of every linear, and its FP8 copies; ZeRO does not shard the copies
    tp2 = estimate_memory(TOY, cfg("megatron", precision="fp8", tp=2, gpus=2))
    assert tp2.breakdown["fp8_weights"] == pytest.approx(FP8_GEMM, rel=1e-12)
    z3 = estimate_memory(TOY, cfg("megatron", precision="fp8", gpus=2, zero=3))
    assert z3.breakdown["fp8_weights"] == pytest.approx(2 * FP8_GEMM, rel=1e-12)
    # no fp8_weights component outside precision fp8
    assert "fp8_weights" not in estimate_memory(TOY, cfg("megatron")).breakdown


def test_fp8_moe_by_hand():
    # §13.1: the local experts' weights (E/ep) have FP8 copies, the router none; §13.2: the MoE layer's norm output is
    # kept 16-bit for the router, each active expert's down input is FP8
    moe = replace(TOY, n_experts=4, top_k=2, name="toy-moe")
    c = cfg("megatron", precision="fp8", gpus=2, ep=2)
    est = estimate_memory(moe, c)
    assert est.breakdown["fp8_weights"] == pytest.approx(2 * L * (ATTN + 4 / 2 * MLP), rel=1e-12)
    per = fp8_layer_by_hand() + SBH + (2 - 1) * ((2 * 2 + 1) * S * B * F)  # mlp input 2 B; top-2 experts' tensors
    assert layer_activation_bytes(moe, c, PROFILES["megatron"], FULL, set()) == pytest.approx(per, rel=1e-12)


def test_fp8_fewer_activations_than_bf16_llama3_8b():
    # §13.2 on Llama-3-8B (h 4096, q_width 4096, kv_width 1024, f 14336 = 3.5h, megatron): 34 s·b·h per layer in
    # bf16 -> 29.5 in FP8 (attention and MLP inputs 2 -> 1 B, down input 3.5 x 2 -> 1 B, o_proj's FP8 copy +1),
    # plus the log-sum-exp 4·a/h = 0.03125 in both
    from scaling_planner.model import get_preset

    s = get_preset("llama-3-8b")
    c = dict(framework="megatron", seq_len=4096)
    sbh = 4096 * s.d_model
    bf16 = layer_activation_bytes(s, MemoryConfig(**c).resolved(), PROFILES["megatron"], FULL, set())
    fp8 = layer_activation_bytes(s, MemoryConfig(precision="fp8", **c).resolved(), PROFILES["megatron"], FULL, set())
    assert bf16 / sbh == pytest.approx(34.03125, rel=1e-12)
    assert fp8 / sbh == pytest.approx(29.53125, rel=1e-12)


def test_sdpa_math_fallback_by_hand():
    # docs/memory.md §4.2: fp32 + GQA through SDPA(enable_gqa=True) runs the math kernel: fp32 probabilities a·s²·b
    # + K, V repeated to a heads − flash's log-sum-exp. Llama-3.2-1B shape (a 32, kv 8, head_dim 64), s 1024, b 4.
    from scaling_planner.memory import activations
    from scaling_planner.memory.config import MemoryConfig as MC
    from scaling_planner.memory.profiles import profile as prof_of
    from scaling_planner.model import get_preset

    shape = get_preset("llama-3.2-1b")
    c = MC(precision="fp32", seq_len=1024, micro_batch=4).resolved()
    by_hand = 4 * 32 * 1024 * 1024 * 4 + 2 * 4 * 1024 * 4 * (2048 - 512) - 4 * 32 * 1024 * 4
    assert activations.sdpa_math_fallback(shape, c, prof_of("hf"), set(), set()) == by_hand
    # no GQA (phi-3-mini, 32/32 heads): mem-efficient attention takes fp32; bf16: flash
    assert activations.sdpa_math_fallback(get_preset("phi-3-mini"), c, prof_of("hf"), set(), set()) == 0
    c16 = MC(precision="bf16", seq_len=1024, micro_batch=4).resolved()
    assert activations.sdpa_math_fallback(shape, c16, prof_of("hf"), set(), set()) == 0
    assert activations.sdpa_math_fallback(shape, c, prof_of("torchtune"), set(), set()) == 0


def test_optimizer_in_backward_by_hand():
    # docs/memory.md §7.3, torchtune optimizer_in_bwd: no gradient buffer; in backward the tied embedding's gradient
    # (waiting for its second contribution) + the largest other parameter's gradient, and one parameter's foreach
    # temporary. Llama-3.2-3B bf16 (tied, V 128256, h 3072, largest linear 3072 x 8192).
    from scaling_planner.errors import ScalePlanError
    from scaling_planner.memory.config import MemoryConfig as MC
    from scaling_planner.model import get_preset

    s = get_preset("llama-3.2-3b")
    kw = dict(framework="torchtune", seq_len=4096, micro_batch=2, recompute="full", peak_kind="allocated")
    plain = estimate_memory(s, MC(**kw))
    est = estimate_memory(s, MC(**kw, optimizer_in_bwd=True))
    emb, lin = 128256 * 3072, 3072 * 8192
    assert est.phases["optimizer_step"] == pytest.approx(2 * s.params_total + 2 * lin + 2 * emb + 4 * s.params_total,
                                                         rel=1e-12)  # weights + in-flight grads + AdamW states
    assert est.phases["backward_end"] - est.phases["optimizer_step"] == pytest.approx(
        plain.phases["backward_end"] - plain.breakdown["weights"] - 2 * s.params_total - 4 * s.params_total
        + 2 * emb, rel=1e-9)  # one layer's activations + one parameter's (the embedding's) step temporary
    assert plain.phases["optimizer_step"] - est.phases["optimizer_step"] == pytest.approx(
        2 * s.params_total - 2 * (lin + emb) + 2 * s.params_total, rel=1e-12)  # grads and the temporary gone
    with pytest.raises(ScalePlanError, match="grad_accum"):
        estimate_memory(s, MC(**kw, optimizer_in_bwd=True, grad_accum=2))


def test_activation_offload_matches_torchtune_readme():
    # pytorch/torchtune README @ bd2a0fc, "Optimization flags" (Llama 3.2 3B, bf16, batch 2, seq 4096, activation
    # checkpointing, optimizer_in_bwd): + Activation Offloading 23.1 -> 21.8 GiB peak active. Ours: the checkpoints,
    # L·2·s·b·h = 28·2·4096·2·3072 B = 1.3125 GiB, move to CPU.
    from scaling_planner.errors import ScalePlanError
    from scaling_planner.memory.config import MemoryConfig as MC
    from scaling_planner.model import get_preset

    s = get_preset("llama-3.2-3b")
    kw = dict(framework="torchtune", seq_len=4096, micro_batch=2, recompute="full", peak_kind="allocated",
              optimizer_in_bwd=True)
    saved = estimate_memory(s, MC(**kw)).allocated - estimate_memory(s, MC(**kw, activation_offload=True)).allocated
    assert saved == 28 * 2 * 4096 * 2 * 3072
    assert saved / GIB == pytest.approx(23.1 - 21.8, abs=0.05)
    with pytest.raises(ScalePlanError, match="recompute"):
        estimate_memory(s, MC(framework="torchtune", activation_offload=True))


def test_autocast_copies_under_zero3_recompute_are_one_layer():
    # amp: autocast keeps 16-bit copies of the weights for backward; under ZeRO-3 with full recompute only the layer
    # in flight (FSDP's gathered params are views, never in autocast's cache; recompute drops the saved casts)
    from scaling_planner.memory import training
    from scaling_planner.memory.config import MemoryConfig
    from scaling_planner.model import get_preset

    s = get_preset("llama-3-70b")
    base = dict(framework="hf", precision="amp", gpus=64, zero=3)
    c = MemoryConfig(**base, recompute="full").resolved()
    rp = training.stage_params(s, c)[0]
    assert training.autocast_copies(s, c, rp) == 2 * s.layer_params()
    c0 = MemoryConfig(**base).resolved()
    assert training.autocast_copies(s, c0, rp) == 2 * (rp.split + rp.emb + rp.head)  # saved for backward: all
