"""Each planner mechanism pinned by a hand calculation from its documented formula (docs/planning.md) or by a
published / worked number, so that stubbing it out fails a test (python -m tests.mutations planner).

Mechanisms are reached through their module attributes (``timing.tp_comm``, ``defaults.default_mfu``, ...), the
same ones the planner calls."""

import math

import numpy as np
import pytest

from scaling_planner.hardware import get_gpu
from scaling_planner.io.law_file import load_law
from scaling_planner.model import ModelShape
from scaling_planner.planner import allocation, defaults, layout, plan_budget, timing
from scaling_planner.planner.layout import Layout
from scaling_planner.units import GIB

A100 = get_gpu("a100-80")  # 312 TFLOP/s dense BF16, NVLink 300 GB/s, NIC 25 GB/s, 8 per node (planning.md §5.3)
# Llama-2-7B's shape (Touvron et al. 2023): 32 layers, d_model 4096, 32 heads, ffn 11008, vocab 32000
LLAMA7B = ModelShape(vocab=32000, d_model=4096, n_layers=32, n_heads=32)
N7B = 6_738_415_616  # its parameter count (the published "6.74B"; model.py counts it, tests/test_model_hardware.py)
F_A100 = 312e12 * 0.45  # achieved FLOP/s per GPU at MFU 0.45 (planning.md §4.3)


def lay(**kw):
    base = dict(tp=1, pp=1, dp=1, zero_stage=0, micro_batch=1, grad_accum=1, recompute="none")
    return {**base, **kw}


def test_shape_is_llama7b():
    assert LLAMA7B.params_total == N7B and LLAMA7B.params_active == N7B


# ---------------------------------------------------------------- throughput model, docs/planning.md §4.3
def test_tp_pp_recompute_terms_by_hand():
    # TP 2 x PP 2 x DP 2 on one 8-GPU node, micro-batch 1, 4 micro-batches, seq 4096, full recompute, MFU 0.45
    eff, pen = timing.throughput(LLAMA7B, A100, lay(tp=2, pp=2, dp=2, zero_stage=1, grad_accum=4, recompute="full"),
                                 4096, 0.45, 8)
    # TP: (t-1)·F/(3·h·bw_NVLink) = 1 · 1.404e14 / (3 · 4096 · 300e9) = 1.404e14 / 3.6864e15
    tp = 1.404e14 / 3.6864e15
    assert tp == pytest.approx(0.0380859375)
    assert pen["tp_comm"] == pytest.approx(tp, rel=1e-12)
    # bubble (p-1)/m = 1/4 (Narayanan et al. 2021 §2.2.1)
    assert pen["pp_bubble"] == pytest.approx(0.25, rel=1e-12)
    # one micro-batch: 6·N/(t·p) FLOPs per token x 4096 tokens / F
    t_mb = 6 * N7B / 4 * 4096 / F_A100
    # PP p2p: 2·2·b·s·h/t bytes over NVLink (t·p = 4 GPUs, inside the node), / t_mb
    pp = (2 * 2 * 1 * 4096 * 4096 / 2 / 300e9) / t_mb
    assert pen["pp_comm"] == pytest.approx(pp, rel=1e-12)
    # DP: 2·(d-1)/d · N/(t·p) · 2 B = N/2 bytes over NVLink, hidden by 2/3 of one micro-batch's backward
    assert N7B / 2 / 300e9 < 2 / 3 * t_mb and pen["dp_comm_exposed"] == 0
    # full recompute: 6/8 of the throughput, a 1/3 longer step
    assert pen["recompute"] == pytest.approx(1 / 3, rel=1e-12)
    assert eff == pytest.approx(0.75 / ((1 + tp + pp) * (1 + 0.25) + 0), rel=1e-12)


def test_pp_comm_crosses_nodes_over_the_nic():
    # TP 2 x PP 8 = 16 GPUs > one node: stage boundaries go over the 25 GB/s NIC
    eff, pen = timing.throughput(LLAMA7B, A100, lay(tp=2, pp=8, grad_accum=8), 4096, 0.45, 8)
    t_mb = 6 * N7B / 16 * 4096 / F_A100
    pp = (2 * 2 * 1 * 4096 * 4096 / 2 / 25e9) / t_mb
    assert pen["pp_comm"] == pytest.approx(pp, rel=1e-12)
    assert pen["pp_bubble"] == pytest.approx(7 / 8)
    assert eff == pytest.approx(1 / ((1 + 1.404e14 / 3.6864e15 + pp) * (1 + 7 / 8)), rel=1e-12)


@pytest.mark.parametrize("zero", [1, 3])
def test_dp_exposed_by_hand(zero):
    # DP 16 over two nodes (NIC 25 GB/s), 2 micro-batches of 1 x 1024 tokens: the gradient reduce is exposed
    eff, pen = timing.throughput(LLAMA7B, A100, lay(dp=16, zero_stage=zero, grad_accum=2), 1024, 0.45, 8)
    t_mb = 6 * N7B * 1024 / F_A100
    vol = 2 * 15 / 16 * N7B * 2  # bytes, ring all-reduce of bf16 gradients
    overlap = 2 / 3 * t_mb
    if zero == 3:  # parameters re-gathered every micro-batch, forward and backward; overlap with every backward
        vol *= 1.5 * 2
        overlap *= 2
    exposed = (vol / 25e9 - overlap) / (2 * t_mb)
    assert exposed > 1
    assert pen["dp_comm_exposed"] == pytest.approx(exposed, rel=1e-12)
    assert eff == pytest.approx(1 / (1 + exposed), rel=1e-12)


def test_ideal_layout_scores_one():
    eff, pen = timing.throughput(LLAMA7B, A100, lay(), 4096, 0.45, 8)
    assert eff == 1 and not any(pen.values())


def test_ranking_follows_the_score():
    # planning.md §4.1: best throughput first; ties: less model parallelism, then less memory; one per (t, p, z, rc)
    mk = lambda eff, tp=1, pp=1, z=0, rc="none", mem=10.0, mb=1: Layout(  # noqa: E731
        gpus=8, dp=8 // (tp * pp), tp=tp, pp=pp, zero_stage=z, micro_batch=mb, grad_accum=1, global_batch=8,
        recompute=rc, sp=tp > 1, memory_gib=mem, efficiency=eff, penalties={})
    a, b, c, d = mk(0.9, tp=2), mk(0.95, z=1), mk(0.9, tp=1, mem=20.0), mk(0.95, z=1, mb=2)
    assert layout.rank([a, b, c, d], 4) == [b, c, a]


# ---------------------------------------------------------------- layout search, docs/planning.md §4.1-4.2
def test_zero_2_3_only_without_pipeline():
    assert list(layout.zero_stages(1, 4)) == [0, 1, 2, 3]
    assert list(layout.zero_stages(2, 4)) == [0, 1]  # Megatron / DeepSpeed PP shard only the optimizer
    assert list(layout.zero_stages(1, 1)) == [0]
    found = [L for L in layout.candidates(LLAMA7B, 16, 64, 8)]
    assert any(L.pp > 1 for L in found) and not any(L.pp > 1 and L.zero_stage > 1 for L in found)


def test_memory_filter_drops_what_does_not_fit():
    # megatron profile: 18 B/param of states (memory.md §11.4) -> 7B needs ~113 GiB on one GPU, > 95% of 80 GiB
    assert 18 * N7B / GIB > 0.95 * 80
    assert layout.search_layouts(LLAMA7B, A100, 1, 8, 4096, 0.45, 8) == []
    found = layout.search_layouts(LLAMA7B, A100, 8, 64, 4096, 0.45, 8, max_results=50)
    assert found
    for L in found:  # each layout keeps the estimate it was checked with
        assert L.memory.device / GIB == pytest.approx(L.memory_gib) and L.memory_gib <= 0.95 * 80


def test_layout_memory_config_is_the_checked_one():
    from scaling_planner.memory import estimate_memory

    p = plan_budget(flops=1e22, gpu="a100-80", framework="deepspeed")
    cfg = p.layout.memory_config(p.framework, p.seq_len)
    assert cfg.framework == "deepspeed" and (cfg.tp, cfg.pp, cfg.dp, cfg.zero) == (
        p.layout.tp, p.layout.pp, p.layout.dp, p.layout.zero_stage)
    assert estimate_memory(p.shape, cfg, p.gpu, suggest=False).device == p.memory.device == p.layout.memory.device


def test_why_lost_names_the_larger_penalty():
    mk = lambda eff, pen, mem=10.0: Layout(gpus=8, dp=4, tp=1, pp=2, zero_stage=0, micro_batch=1,  # noqa: E731
                                           grad_accum=4, global_batch=16, recompute="none", sp=False,
                                           memory_gib=mem, efficiency=eff, penalties=pen)
    best = mk(0.8, {"pp_bubble": 0.0, "tp_comm": 0.05})
    assert layout.why_lost(best, mk(0.64, {"pp_bubble": 0.25, "tp_comm": 0.05})) == \
        "-20.0% throughput (pipeline bubble 25%)"
    assert layout.why_lost(best, mk(0.8, {}, mem=12.0)) == "same throughput, +2.0 GiB per GPU"
    p = plan_budget(flops=1e23, gpu="a100-80")
    assert p.alternatives and all(a["why_lost"] for a in p.alternatives)


# ---------------------------------------------------------------- MFU defaults, docs/planning.md §5.1
@pytest.mark.parametrize("gpu,params,gpus,mfu", [
    ("a100-80", 1e10, 64, 0.45), ("h100", 1e10, 64, 0.40), ("h200", 1e10, 64, 0.40), ("l4", 1e10, 64, 0.40),
    ("a100-80", 1e9, 64, 0.40),     # -0.05 below 3B params
    ("h100", 1e10, 8192, 0.35),     # -0.05 above 4,096 GPUs
    ("a100-40", 1e9, 8192, 0.35),   # both
])
def test_default_mfu_table(gpu, params, gpus, mfu):
    assert defaults.default_mfu(get_gpu(gpu), params, gpus)[0] == pytest.approx(mfu)


def test_large_cluster_mfu_reaches_the_plan():
    p = plan_budget(params=70e9, tokens=2e12, gpus=8192, gpu="h100")
    assert p.mfu == pytest.approx(0.35) and "above 4,096 GPUs" in p.assumptions["mfu_source"]


# ---------------------------------------------------------------- time, docs/planning.md §5.2
def test_days_formula_worked_example():
    # planning.md §5.2: 1e23 FLOPs on A100-80GB, MFU 0.45, goodput 0.9 -> 1e23/(312e12·0.45·0.9)/3600 = 219,830
    # GPU-hours; 312 GPUs -> 29.4 days; $439,661 at $2.00/GPU-hour
    assert timing.days(1e23, 312, 312e12, 0.45, 0.9) == pytest.approx(1e23 / (312 * 312e12 * 0.45 * 0.9) / 86400)
    p = plan_budget(flops=1e23, gpu="a100-80")
    assert p.gpu_hours == pytest.approx(219_830, rel=1e-5)
    assert p.layout.gpus == 312 and p.days == pytest.approx(29.36, abs=0.01)
    assert p.cost_usd == pytest.approx(439_661, rel=1e-5)


# ---------------------------------------------------------------- batch and LR, docs/planning.md §3.2-3.3
def test_deepseek_batch_and_lr():
    # DeepSeek LLM §3.1: B_opt = 0.2920·C^0.3271, eta_opt = 0.3118·C^-0.1250; at 1e23: 9.74M tokens, 4.16e-4
    assert defaults.deepseek_batch_tokens(1e23) == pytest.approx(9.7428e6, rel=1e-4)
    assert defaults.deepseek_learning_rate(1e23) == pytest.approx(4.1579e-4, rel=1e-4)
    p = plan_budget(flops=1e23, gpu="a100-80")
    assert p.assumptions["batch_reference_tokens"]["deepseek_B_opt"] == pytest.approx(9.7428e6, rel=1e-4)
    assert p.learning_rate == pytest.approx(4.1579e-4, rel=1e-4)
    # 9.74M / 4096 = 2379 sequences -> the nearest power of two in log2: 2048 (planning.md §3.2)
    from scaling_planner.planner.plan import _batch

    assert _batch(1e23, 4096, None)[0] == 2048


# ---------------------------------------------------------------- allocation, docs/planning.md §2.5-2.7
def test_inference_aware_minimises_lifetime_flops_by_hand():
    # Sardana et al. 2024 (planning.md §2.5): on the iso-loss curve of the compute-optimal model, minimise
    # 6·N·D_train(N) + 2·N·D_inf; D_train(N) = (B/(l - E - A/N^alpha))^(1/beta). Independent fine grid here.
    law = load_law("epoch2024")
    p = law.params
    C, D_inf = 1e23, 2e13
    N0, D0 = (float(x) for x in law.optimal(C))
    target = p["E"] + p["A"] / N0 ** p["alpha"] + p["B"] / D0 ** p["beta"]
    N = np.geomspace(N0 / 50, N0, 200_001)
    gap = target - p["E"] - p["A"] / N ** p["alpha"]
    N = N[gap > 0]
    Dtr = (p["B"] / gap[gap > 0]) ** (1 / p["beta"])
    i = int(np.argmin(6 * N * Dtr + 2 * N * D_inf))
    ia = allocation.inference_aware(law, C, D_inf)
    assert ia["params"] == pytest.approx(N[i], rel=2e-3) and ia["params"] < 0.9 * N0
    assert ia["saving_fraction"] > 0.05
    plan = plan_budget(flops=C, inference_tokens=D_inf, gpu="h100")
    assert plan.params == pytest.approx(N[i], rel=2e-3)
    assert plan.loss == pytest.approx(target, rel=1e-6)  # same loss as the compute-optimal model


def test_repeated_data_loss_by_hand():
    # Muennighoff et al. 2023 Eq. 5 (planning.md §2.6): D' = U + U·R_D*·(1 - exp(-R_D/R_D*)), R_D = D/U - 1.
    # N = 1e9 is below the compute-optimal size for 1e11 unique tokens, so N' = N.
    law = load_law("epoch2024")
    p = law.params
    rep = {"R_D_star": 15.387756, "R_N_star": 5.309743}  # fits/muennighoff2023.json
    N, D, U = 1e9, 4e11, 1e11
    D_eff = U + U * 15.387756 * (1 - math.exp(-3 / 15.387756))
    expected = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D_eff ** p["beta"]
    assert float(allocation.repeated_data_loss(law, rep, N, D, U)) == pytest.approx(expected, rel=1e-12)
    assert expected > float(law.loss(N, D))


def test_data_constrained_uses_the_given_repetition():
    law = load_law("epoch2024")
    N0, _ = law.optimal(1e23)
    # repetition worth fresh data (R* huge): the allocation is the unconstrained optimum
    fresh = allocation.data_constrained(law, 1e23, 1e11, {"R_D_star": 1e12, "R_N_star": 1e12})
    assert fresh["params"] == pytest.approx(N0, rel=5e-3)
    real = allocation.data_constrained(law, 1e23, 1e11, load_law("muennighoff2023").params)
    assert abs(real["params"] / N0 - 1) > 0.05 and real["loss"] > fresh["loss"]
    p = plan_budget(flops=1e23, gpu="h100", unique_tokens=1e11)
    assert p.params == pytest.approx(real["params"]) and p.loss == pytest.approx(real["loss"])


def test_interval_of_epoch2024_at_1e23():
    # planning.md §2.7: epoch2024's 1,000 replicates at 1e23 -> N 22.6B-42B, D 397B-738B, D/N 9.4-32.7
    iv = allocation.law_interval(load_law("epoch2024"), 1e23)
    assert iv["samples"] == 1000
    assert iv["params"] == pytest.approx([22.6e9, 42.0e9], rel=0.005)
    assert iv["tokens"] == pytest.approx([397e9, 738e9], rel=0.005)
    assert iv["tokens_per_param"] == pytest.approx([9.4, 32.7], rel=0.01)
    assert plan_budget(flops=1e23, gpu="a100-80").interval["params"] == pytest.approx(iv["params"])


# ---------------------------------------------------------------- the report draws the Plan only
def test_plan_report_draws_only_what_the_plan_holds(monkeypatch):
    pytest.importorskip("matplotlib")
    from scaling_planner.render.report.plan import plan_content

    plain = plan_budget(flops=1e22, gpu="a100-80")
    scanned = plan_budget(flops=1e22, gpu="a100-80", scan=True)
    assert plain.scan is None and [s.gpus for s in scanned.scan].count(scanned.layout.gpus) == 1

    def refuse(*a, **k):
        raise AssertionError("the report must not search or estimate")

    monkeypatch.setattr(layout, "search_layouts", refuse)
    monkeypatch.setattr(layout, "estimate_memory", refuse)
    assert len(plan_content(plain).figures) == 1  # memory per layout; no scan, no time/cost figure
    assert len(plan_content(scanned).figures) == 2
    at_plan = next(s for s in scanned.scan if s.gpus == scanned.layout.gpus)
    assert at_plan.days == pytest.approx(scanned.days) and at_plan.cost_usd == pytest.approx(scanned.cost_usd)
