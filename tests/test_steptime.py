"""Step-time model (scaling_planner/planner/steptime.py, docs/planning.md §5.4): mechanisms by hand arithmetic, then
validation against published runs with the defaults only (no per-case constants).

Validation errors at the time of writing (predicted vs published; the table in docs/planning.md §5.4):
Narayanan et al. 2021 Table 1 (TFLOP/s per GPU, Eq. 3 counting): -0.1, -2.3, -4.7, -3.8, +6.8, +11.6, +7.6, +10.7,
+13.8, +15.4 % (median |error| 7.2 %); LLaMA-65B 322 vs ~380 tokens/s/GPU (-15.2 %); single H100, transformers:
Llama-3.2-3B MFU 0.401 vs 0.35 (+15 %).
"""

from __future__ import annotations

import statistics

import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.hardware import get_gpu
from scaling_planner.model import ModelShape, get_preset
from scaling_planner.planner import steptime
from scaling_planner.planner.kernels import KERNELS
from scaling_planner.planner.steptime import BREAKDOWN_KEYS, StepTime, step_time

A100 = get_gpu("a100-80")
H100 = get_gpu("h100")
L2_7B = get_preset("llama-2-7b")


def _run(shape=L2_7B, gpu=A100, **kw):
    args = dict(tp=1, pp=1, dp=1, micro_batch=1, grad_accum=1, seq_len=4096)
    args.update(kw)
    return step_time(shape, gpu, **args)


# ---- contract ---------------------------------------------------------------------------------------------------
def test_result_contract_and_mfu_definition():
    st = _run(tp=2, pp=2, dp=4, grad_accum=8, zero_stage=1, sp=True)
    assert isinstance(st, StepTime)
    assert tuple(st.breakdown) == BREAKDOWN_KEYS
    assert st.seconds == pytest.approx(sum(st.breakdown.values()))
    tokens = 8 * 4 * 1 * 4096  # grad_accum · dp · micro_batch · seq
    assert st.tokens_per_s == pytest.approx(tokens / st.seconds)
    # MFU = 6·N_active·tokens/s / (GPUs · dense bf16 peak)
    assert st.mfu == pytest.approx(6 * L2_7B.params_active * st.tokens_per_s / (16 * 312e12))
    assert st.hfu > st.mfu  # attention FLOPs are executed but not in 6N
    assert {"gemm_mamf", "hbm_efficiency", "framework"} <= set(st.assumptions)


@pytest.mark.parametrize("kw,param", [
    (dict(tp=3), "tp"), (dict(pp=5), "pp"), (dict(micro_batch=0), "micro_batch"), (dict(recompute="some"), "recompute"),
    (dict(framework="jax"), "framework"), (dict(precision="fp4"), "precision"), (dict(zero_stage=4), "zero_stage"),
    (dict(ep=2, dp=2), "ep"), (dict(attention="ring"), "attention"), (dict(optimizer="sgd"), "optimizer"),
])
def test_bad_input_names_the_keyword(kw, param):
    with pytest.raises(ScalePlanError) as e:
        _run(**kw)
    assert e.value.param == param


# ---- GEMM efficiency ---------------------------------------------------------------------------------------------
def test_gemm_efficiency_wave_quantisation_and_k_falloff():
    # A100: 108 SMs, 128 x 128 tiles. 109 tiles need 2 waves: 109/216 of the GPU busy.
    assert steptime.wave_efficiency(128 * 109, 128, 108) == pytest.approx(109 / 216)
    assert steptime.wave_efficiency(128 * 108, 128, 108) == 1.0
    # MAMF (A100 SXM 271.2/312) × wave × k/(k + 64)
    eff = steptime.gemm_efficiency(A100, 128 * 108, 128, 4096)
    assert eff == pytest.approx(0.869 * 4096 / (4096 + 64))
    assert steptime.gemm_efficiency(A100, 128 * 108, 128, 256) == pytest.approx(0.869 * 256 / 320)
    # FP8 on H100: its own MAMF (1402.6/1979) against the FP8 peak
    assert steptime.gemm_efficiency(H100, 128 * 132, 128, 4096, "fp8") == pytest.approx(0.709 * 4096 / 4160)
    # small GEMMs are slower per FLOP
    big, small = (steptime.gemm_seconds(A100, m, m, m, "bf16") / m ** 3 for m in (8192, 256))
    assert small > 1.5 * big


def test_fp8_speeds_up_gemms_on_h100_only_through_the_fp8_peak():
    bf = _run(gpu=H100, precision="bf16")
    f8 = _run(gpu=H100, precision="fp8")
    ratio = bf.breakdown["compute"] / f8.breakdown["compute"]
    assert 1.3 < ratio < 2.0  # 2x peak × 0.709/0.803 efficiency on the layer GEMMs; head and attention stay bf16
    assert f8.mfu > bf.mfu  # MFU stays against the bf16 peak


# ---- attention -----------------------------------------------------------------------------------------------------
def test_attention_flops_are_causal_and_counted():
    # 4·b·s²·(a·d_h)/t × ½ per layer
    assert steptime.attention_flops(L2_7B, 2, 4096, 2) == pytest.approx(4 * 2 * 4096 ** 2 * 4096 / 2 * 0.5)
    short, long_ = _run(seq_len=2048, micro_batch=2), _run(seq_len=4096)
    # same tokens per micro-batch: the longer sequence costs more compute (attention grows with s)
    assert long_.breakdown["compute"] > short.breakdown["compute"] * 1.03
    assert long_.hfu / long_.mfu > short.hfu / short.mfu


def test_eager_attention_materialises_scores():
    flash, eager = _run(seq_len=2048), _run(seq_len=2048, attention="eager")
    assert eager.breakdown["memory_bound"] > flash.breakdown["memory_bound"]  # b·a·s² scores through HBM
    assert eager.breakdown["compute"] > flash.breakdown["compute"]  # full square, not causal half


# ---- memory-bound work and the framework --------------------------------------------------------------------------
def test_memory_bytes_hand_count_megatron():
    k = KERNELS["megatron"]
    layer, loss = steptime.memory_bytes(L2_7B, k, tokens=1000, tp=1, sp=False, ep=1, lm_head=True)
    h, f, q, kv = 4096, 11008, 4096, 4096
    per_tok = 2 * 10 * h + 2 * 12 * h + 8 * (q + kv) + 16 * f
    assert layer == pytest.approx(per_tok * 1000)
    assert loss == pytest.approx(36 * 1000 * 32000)
    # sequence parallelism splits norms and residual adds over t
    layer_sp, _ = steptime.memory_bytes(L2_7B, k, tokens=1000, tp=2, sp=True, ep=1, lm_head=False)
    assert layer_sp == pytest.approx(((2 * 10 * h + 2 * 12 * h) / 2 + (8 * (q + kv) + 16 * f) / 2) * 1000)


def test_unfused_framework_moves_more_bytes_and_is_slower():
    meg, hf = _run(framework="megatron"), _run(framework="hf")
    assert hf.breakdown["memory_bound"] > 2 * meg.breakdown["memory_bound"]
    assert hf.mfu < meg.mfu


def test_optimizer_fused_vs_foreach_and_states():
    # 7 tensor touches (fused) vs 21 (foreach) per parameter, × state bytes, + bf16 copy for fp32 masters
    bw = A100.mem_bw_gb_s * 1e9 * steptime.HBM_EFFICIENCY
    k = KERNELS["megatron"]
    assert steptime.optimizer_seconds(1e9, A100, k, "fused", 4) == pytest.approx(1e9 * 30 / bw)
    assert steptime.optimizer_seconds(1e9, A100, k, "foreach", 4) == pytest.approx(1e9 * 86 / bw)
    assert steptime.optimizer_seconds(1e9, A100, k, "fused", 2) == pytest.approx(1e9 * 14 / bw)
    # ZeRO-1 shards the step over DP
    z0, z1 = _run(dp=8, grad_accum=4, zero_stage=0), _run(dp=8, grad_accum=4, zero_stage=1)
    assert z1.breakdown["memory_bound"] < z0.breakdown["memory_bound"]


# ---- communication -----------------------------------------------------------------------------------------------
def test_tp_comm_hand_arithmetic():
    assert _run().breakdown["tp_comm"] == 0.0
    # two forward all-reduces of tokens·h bf16 values, 2·(t−1)/t on NVLink (300 GB/s × 0.75)
    t = steptime.tp_seconds(L2_7B, A100, 4096, 4, 8)
    assert t == pytest.approx(2 * 2 * 3 / 4 * 4096 * 4096 * 2 / (300e9 * 0.75))
    st = _run(tp=4, sp=True)
    assert st.breakdown["tp_comm"] == pytest.approx(2 * 32 * t)  # forward + backward, every layer


def test_collective_bandwidth_spans_nodes():
    nv, nic = 300e9 * 0.75, 25e9 * 0.75
    assert steptime.collective_bw(A100, 8, 1, 8) == pytest.approx(nv)
    assert steptime.collective_bw(A100, 16, 8, 8) == pytest.approx(nic)  # TP 8: one NIC per DP group per node
    assert steptime.collective_bw(A100, 64, 2, 8) == pytest.approx(4 * nic)  # 4 ranks of the group per node


def test_dp_exposed_overlap_and_zero3():
    k = KERNELS["megatron"]
    kw = dict(dp=64, stride=8, grad_accum=4, grad_bytes=4, gpn=8)
    bw = steptime.collective_bw(A100, 64, 8, 8)
    rs = 63 / 64 * 1e9 * 4 / bw
    ag = 63 / 64 * 1e9 * 2 / bw
    no_overlap = steptime.Kernels(**{**k.__dict__, "overlap_dp": False})
    assert steptime.dp_exposed_seconds(1e9, A100, no_overlap, zero_stage=1, t_mb=1.0, **kw) == pytest.approx(rs + ag)
    got = steptime.dp_exposed_seconds(1e9, A100, k, zero_stage=1, t_mb=1.0, **kw)
    assert got == pytest.approx(max(0, rs - 2 / 3) + max(0, ag - 1 / 3))
    z3 = steptime.dp_exposed_seconds(1e9, A100, no_overlap, zero_stage=3, t_mb=1.0, **kw)
    assert z3 == pytest.approx(rs + ag + 4 * 2 * ag)
    assert steptime.dp_exposed_seconds(1e9, A100, k, dp=1, stride=1, zero_stage=1, grad_accum=1, grad_bytes=4,
                                       t_mb=1.0, gpn=8) == 0.0


def test_pipeline_bubble_is_p_minus_1_over_vm():
    st1 = _run(pp=4, dp=1, grad_accum=8)
    st2 = _run(pp=4, dp=1, grad_accum=8, interleave=2)
    t_mb = (st1.breakdown["compute"] + st1.breakdown["memory_bound"]) / 8  # no TP/EP/recompute; optimizer tiny
    assert st1.breakdown["pp_bubble"] == pytest.approx(3 * t_mb, rel=0.02)
    assert st2.breakdown["pp_bubble"] < st1.breakdown["pp_bubble"] * 0.55
    assert _run().breakdown["pp_bubble"] == 0.0


def test_moe_expert_parallel_all_to_all():
    moe = get_preset("mixtral-8x7b")
    st = _run(moe, tp=1, dp=8, ep=8, grad_accum=2)
    assert st.breakdown["ep_comm"] > 0
    # 4 all-to-alls per layer per micro-batch (dispatch, combine; fwd, bwd) of tokens·top_k·h bf16 values, (ep−1)/ep
    per = 7 / 8 * 4096 * 2 * 4096 * 2 / steptime.collective_bw(A100, 8, 1, 8)
    assert st.breakdown["ep_comm"] == pytest.approx(2 * 32 * 4 * per)
    assert _run(moe, dp=8).breakdown["ep_comm"] == 0.0
    # compute follows the active parameters: about a dense model of the active size, far below total
    assert st.mfu > 0.2


# ---- recompute ----------------------------------------------------------------------------------------------------
def test_recompute_full_adds_a_forward_selective_the_attention():
    none, sel, full = (_run(recompute=r) for r in ("none", "selective", "full"))
    assert none.breakdown["recompute"] == 0.0
    assert 0 < sel.breakdown["recompute"] < 0.1 * none.breakdown["compute"]
    # full: about one forward = a third of the forward + backward compute
    assert full.breakdown["recompute"] == pytest.approx(none.breakdown["compute"] / 3, rel=0.15)
    assert full.mfu < none.mfu and full.hfu > full.mfu * 1.25


# ---- validation: Narayanan et al. 2021 Table 1 ---------------------------------------------------------------------
# (params B, heads, hidden, layers, TP, PP, GPUs, batch, achieved TFLOP/s per GPU); A100-80GB (Selene), s 2048,
# V 51,200, full recompute. Micro-batch not listed in Table 1: 1. Megatron-LM 2021 had no FlashAttention (fused
# softmax on materialised scores: attention="eager") and all-reduced gradients without ZeRO (zero_stage 0).
NARAYANAN = [
    (1.7, 24, 2304, 24, 1, 1, 32, 512, 137, -0.1), (3.6, 32, 3072, 30, 2, 1, 64, 512, 138, -2.3),
    (7.5, 32, 4096, 36, 4, 1, 128, 512, 142, -4.7), (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135, -3.8),
    (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138, 6.8), (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140, 11.6),
    (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148, 7.6), (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155, 10.7),
    (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163, 13.8), (1008, 160, 25600, 128, 8, 64, 3072, 3072, 163, 15.4),
]


def _narayanan_tflops(h, a, L, t, p, n, B):
    shape = ModelShape(vocab=51200, d_model=h, n_layers=L, n_heads=a, ffn=4 * h, gated_mlp=False,
                       tied_embeddings=True, norm="layernorm", bias="all", learned_pos=2048)
    d = n // (t * p)
    st = step_time(shape, A100, tp=t, pp=p, dp=d, micro_batch=1, grad_accum=B // d, seq_len=2048, zero_stage=0,
                   recompute="full", attention="eager")
    eq3 = 96 * B * 2048 * L * h ** 2 * (1 + 2048 / (6 * h) + 51200 / (16 * L * h))  # their FLOPs per iteration
    return eq3 / st.seconds / n / 1e12


@pytest.mark.parametrize("row", NARAYANAN, ids=[f"{r[0]}B" for r in NARAYANAN])
def test_narayanan_table1_per_gpu_throughput(row):
    P, a, h, L, t, p, n, B, published, err_pct = row
    got = _narayanan_tflops(h, a, L, t, p, n, B)
    assert got / published - 1 == pytest.approx(err_pct / 100, abs=0.005)  # the error stated above
    assert abs(got / published - 1) < 0.20  # tolerance: ±20 % per row


def test_narayanan_table1_median_error():
    errs = [abs(_narayanan_tflops(h, a, L, t, p, n, B) / X - 1) for _, a, h, L, t, p, n, B, X, _ in NARAYANAN]
    assert statistics.median(errs) < 0.10


# ---- validation: LLaMA-65B (Touvron et al. 2023 §2.4): ~380 tokens/s/GPU on 2,048 A100-80GB -----------------------
def test_llama_65b_tokens_per_gpu():
    # shape: LLaMA Table 2 (8192, 64 heads, 80 layers) + ffn 22,016 (released config); s 2048; batch 4M tokens =
    # 2048 sequences. Layout not published: TP 8 (the released checkpoint's model-parallel size, the paper's "model
    # and sequence parallelism"), selective recompute (§2.4), ZeRO-1, micro-batch 1.
    shape = ModelShape(vocab=32000, d_model=8192, n_layers=80, n_heads=64, ffn=22016)
    st = step_time(shape, A100, tp=8, pp=1, dp=256, micro_batch=1, grad_accum=8, seq_len=2048, zero_stage=1,
                   recompute="selective", sp=True)
    per_gpu = st.tokens_per_s / 2048
    assert per_gpu / 380 - 1 == pytest.approx(-0.152, abs=0.01)
    assert abs(per_gpu / 380 - 1) < 0.20


# ---- validation: one H100, transformers (issue 11: 6N-MFU 0.14 GPT-2 124M ... 0.35 Llama-3.2-3B) ------------------
def test_single_h100_transformers_llama32_3b():
    # bf16 weights (state_bytes 2), SDPA (flash), fused AdamW; micro-batch 2 × 2048 (not given by the issue)
    st = step_time(get_preset("llama-3.2-3b"), H100, tp=1, pp=1, dp=1, micro_batch=2, grad_accum=1, seq_len=2048,
                   zero_stage=0, framework="hf", optimizer="fused", state_bytes=2)
    assert st.mfu == pytest.approx(0.401, abs=0.005)
    assert abs(st.mfu / 0.35 - 1) < 0.20
    rec = step_time(get_preset("llama-3.2-3b"), H100, tp=1, pp=1, dp=1, micro_batch=2, grad_accum=1, seq_len=2048,
                    zero_stage=0, framework="hf", optimizer="fused", state_bytes=2, recompute="full")
    assert rec.mfu < st.mfu  # "lower with recompute"


def test_single_h100_small_model_is_memory_bound():
    # GPT-2 124M: predicted 0.258 vs 0.14 measured (+84 %): transformers' GPT-2 uses gelu_new, eight eager ops that
    # ModelShape cannot express yet (docs/planning.md §5.4, open gaps). The mechanism holds: small models spend most
    # of the step in memory-bound kernels and reach a lower MFU than 3B.
    g = step_time(get_preset("gpt2"), H100, tp=1, pp=1, dp=1, micro_batch=8, grad_accum=1, seq_len=1024,
                  zero_stage=0, framework="hf", optimizer="fused", state_bytes=2)
    assert g.breakdown["memory_bound"] > g.breakdown["compute"]
    assert g.mfu == pytest.approx(0.258, abs=0.005)
