"""Each planner mechanism pinned by a hand calculation from its documented formula (docs/planning.md) or by a
published / worked number, so that stubbing it out fails a test (python -m tests.mutations planner).

Mechanisms are reached through their module attributes (``timing.tp_comm``, ``defaults.default_mfu``, ...), the
same ones the planner calls."""

import math
from dataclasses import replace

import numpy as np
import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.hardware import get_gpu
from scaling_planner.io.law_file import load_law
from scaling_planner.model import ModelShape
from scaling_planner.planner import allocation, defaults, layout, plan_budget, steptime, timing
from scaling_planner.planner.layout import Layout
from scaling_planner.units import GIB

A100 = get_gpu("a100-80")  # 312 TFLOP/s dense BF16, NVLink 300 GB/s, NIC 25 GB/s, 8 per node (planning.md §5.3)
# Llama-2-7B's shape (Touvron et al. 2023): 32 layers, d_model 4096, 32 heads, ffn 11008, vocab 32000
LLAMA7B = ModelShape(vocab=32000, d_model=4096, n_layers=32, n_heads=32)
N7B = 6_738_415_616  # its parameter count (the published "6.74B"; model.py counts it, tests/test_model_hardware.py)

def test_shape_is_llama7b():
    assert LLAMA7B.params_total == N7B and LLAMA7B.params_active == N7B


# ---------------------------------------------------------------- layout scoring, docs/planning.md §4.3 / §5.4
def test_each_layout_is_timed_by_the_step_model():
    # every searched layout carries the step-time model's prediction for exactly its own fields
    found = layout.search_layouts(LLAMA7B, A100, 16, 64, 4096, 8, max_results=50)
    assert len(found) > 5
    for L in found:
        st = steptime.step_time(LLAMA7B, A100, tp=L.tp, pp=L.pp, dp=L.dp, ep=1, micro_batch=L.micro_batch,
                                grad_accum=L.grad_accum, seq_len=4096, zero_stage=L.zero_stage,
                                recompute=L.recompute, sp=L.sp, framework="megatron", precision="bf16",
                                gpus_per_node=8)
        assert L.step == st and L.efficiency == st.mfu
        assert L.penalties == {k: v / st.seconds for k, v in st.breakdown.items()}
        assert sum(L.penalties.values()) == pytest.approx(1)


def test_search_ranks_by_predicted_throughput():
    # fastest first: the best layout's predicted MFU is the highest of every candidate that fits
    found = layout.search_layouts(LLAMA7B, A100, 16, 64, 4096, 8, max_results=1000)
    best = found[0]
    every = [L for L in layout.candidates(LLAMA7B, 16, 64, 8)
             if layout.fits(layout._estimate(LLAMA7B, L, A100, "megatron", 4096), A100, 0.05)]
    mfus = [timing.layout_step(LLAMA7B, A100, L, 4096, 8, "megatron").mfu for L in every]
    assert best.efficiency == pytest.approx(max(mfus), rel=1e-12)
    assert [L.efficiency for L in found] == sorted((L.efficiency for L in found), reverse=True)


def test_framework_reaches_the_step_model():
    # the same layout timed for transformers' eager kernels is slower than for Megatron's fused ones (§5.4)
    L = Layout(gpus=8, dp=8, tp=1, pp=1, zero_stage=1, micro_batch=1, grad_accum=4, global_batch=32,
               recompute="none", sp=False)
    mega = timing.layout_step(LLAMA7B, A100, L, 4096, 8, "megatron")
    hf = timing.layout_step(LLAMA7B, A100, L, 4096, 8, "hf")
    assert hf.seconds > mega.seconds and hf.breakdown["memory_bound"] > mega.breakdown["memory_bound"]


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
    assert layout.search_layouts(LLAMA7B, A100, 1, 8, 4096, 8) == []
    found = layout.search_layouts(LLAMA7B, A100, 8, 64, 4096, 8, max_results=50)
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


def test_why_lost_names_the_terms_that_cost_more_per_token():
    mk = lambda eff, pen, mem=10.0: Layout(gpus=8, dp=4, tp=1, pp=2, zero_stage=0, micro_batch=1,  # noqa: E731
                                           grad_accum=4, global_batch=16, recompute="none", sp=False,
                                           memory_gib=mem, efficiency=eff, penalties=pen)
    best = mk(0.5, {"compute": 0.9, "tp_comm": 0.1})
    # time per token of a term ∝ fraction / MFU: best compute 0.9/0.5 = 1.8, TP 0.2 (total 2.0); alt: compute
    # 0.72/0.4 = 1.8, bubble 0.2/0.4 = 0.5 (+25% of the best's 2.0), TP 0.08/0.4 = 0.2 (same)
    alt = mk(0.4, {"compute": 0.72, "pp_bubble": 0.2, "tp_comm": 0.08})
    assert layout.why_lost(best, alt) == "-20.0% throughput (pipeline bubble +25%)"
    assert layout.why_lost(best, mk(0.5, {"compute": 0.9, "tp_comm": 0.1}, mem=12.0)) == \
        "same throughput, +2.0 GiB per GPU"
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


def test_default_mfu_is_only_the_first_guess():
    # the plan's MFU is the chosen layout's prediction, whatever the table says (§5.1 is a first guess of G)
    p = plan_budget(params=70e9, tokens=2e12, gpus=8192, gpu="h100")
    assert p.mfu == p.layout.step.mfu == p.layout.efficiency
    assert p.assumptions["mfu_source"] == "predicted by the step-time model (docs/planning.md §5.4)"


# ---------------------------------------------------------------- time, docs/planning.md §5.2
def test_days_from_the_modelled_throughput_by_hand():
    # days = D / tokens_per_s / goodput / 86,400, tokens_per_s = global batch x seq / step seconds (§5.2)
    p = plan_budget(params=N7B, tokens=2e12, gpus=64, gpu="a100-80", goodput=0.9)
    st = p.layout.step
    assert st.tokens_per_s == pytest.approx(p.layout.global_batch * 4096 / st.seconds, rel=1e-12)
    assert p.days == pytest.approx(2e12 / st.tokens_per_s / 0.9 / 86400, rel=1e-12)
    assert p.gpu_hours == pytest.approx(24 * p.days * 64, rel=1e-12)
    d = p.to_dict()
    assert d["tokens_per_s"] == st.tokens_per_s and d["step_time_s"] == pytest.approx(st.seconds, rel=1e-12)
    assert d["mfu"] == st.mfu and d["hfu"] == st.hfu and d["hfu"] > d["mfu"]
    assert list(d["time_breakdown"]) == ["compute", "memory_bound", "tp_comm", "dp_comm_exposed", "pp_bubble",
                                         "ep_comm", "recompute"]
    assert sum(d["time_breakdown"].values()) == pytest.approx(st.seconds, rel=1e-12)
    assert "tokens_per_s" in p.assumptions["time_formula"]


def test_mfu_given_keeps_the_mfu_formula():
    # planning.md §5.2 worked example with --mfu 0.45: 1e23/(312e12·0.45·0.9)/3600 = 219,830 GPU-hours; 312 GPUs ->
    # 29.4 days; $439,661 at $2.00/GPU-hour
    assert timing.days(1e23, 312, 312e12, 0.45, 0.9) == pytest.approx(1e23 / (312 * 312e12 * 0.45 * 0.9) / 86400)
    p = plan_budget(flops=1e23, gpu="a100-80", mfu=0.45)
    assert p.gpu_hours == pytest.approx(219_830, rel=1e-5)
    assert p.layout.gpus == 312 and p.days == pytest.approx(29.36, abs=0.01)
    assert p.cost_usd == pytest.approx(439_661, rel=1e-5)
    assert p.mfu == 0.45 and p.hfu is None and "MFU given" in p.assumptions["time_formula"]
    assert any(n.startswith("MFU 0.45 given: the time uses it") for n in p.notes)
    assert p.tokens_per_s == pytest.approx(312 * 312e12 * 0.45 / (6 * p.params))


def test_default_gpu_count_is_the_fewest_nodes_the_model_says_finish():
    # without --gpus: whole nodes that finish in 30 days at the modelled throughput, and one node fewer does not
    p = plan_budget(flops=1e23, gpu="a100-80")
    G, D = p.layout.gpus, p.tokens
    assert G % 8 == 0 and p.days <= 30
    fewer = layout.search_layouts(p.shape, p.gpu, G - 8, p.global_batch, 4096, 8, max_results=1)
    assert not fewer or timing.days_from_throughput(D, fewer[0].step.tokens_per_s, 0.9) > 30
    assert "re-sized" in p.assumptions["gpus_source"]


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


# ---------------------------------------------------------------- fixed layouts, docs/planning.md §4.1-4.2
LLAMA2_7B_TOKENS = dict(shape=LLAMA7B, tokens=1e11, gpu="a100-80")


@pytest.mark.parametrize("pin", [dict(tp=4), dict(pp=2), dict(dp=8), dict(micro_batch=2), dict(zero=1),
                                 dict(recompute="selective"), dict(tp=2, sp=False)])
def test_each_pinned_axis_constrains_the_search(pin):
    # the generators take only the pinned value; every searched layout (best and alternatives) honours it
    found = layout.search_layouts(LLAMA7B, A100, 16, 64, 4096, 8, max_results=50, fixed=pin)
    assert found
    key = {"zero": "zero_stage"}
    for L in found:
        for k, v in pin.items():
            assert getattr(L, key.get(k, k)) == v
    free = layout.search_layouts(LLAMA7B, A100, 16, 64, 4096, 8, max_results=50)
    assert any(getattr(L, key.get(k, k)) != v for L in free for k, v in pin.items())  # the pin changed something
    p = plan_budget(gpus=16, **LLAMA2_7B_TOKENS, **pin)
    assert all(getattr(p.layout, key.get(k, k)) == v for k, v in pin.items())
    assert p.notes[-1].startswith("layout: " + ", ".join(pin) + " given")


def test_full_layout_fixes_the_gpu_count_and_is_checked():
    p = plan_budget(tp=2, pp=2, dp=4, micro_batch=1, zero=1, recompute="full", sp=True, **LLAMA2_7B_TOKENS)
    L = p.layout
    assert (L.gpus, L.tp, L.pp, L.dp, L.zero_stage, L.micro_batch, L.recompute, L.sp) == \
        (16, 2, 2, 4, 1, 1, "full", True)
    assert p.assumptions["gpus_source"] == "tp·pp·dp given" and p.alternatives == []
    assert p.notes[-1] == "layout: tp, pp, dp, micro_batch, zero, recompute, sp given"


def test_pinned_layout_that_does_not_fit_says_by_how_much_and_what_to_change():
    from scaling_planner.memory import estimate_memory

    pin = dict(tp=1, pp=1, dp=8, micro_batch=2, zero=0, recompute="none")
    with pytest.raises(ScalePlanError) as e:
        plan_budget(**LLAMA2_7B_TOKENS, **pin)
    msg = str(e.value)
    # the overrun, from the memory model itself: device peak - 95% of 80 GiB
    lay = next(layout.candidates(LLAMA7B, 8, 1024, 8, pin))
    need = estimate_memory(LLAMA7B, lay.memory_config("megatron", 4096), A100, suggest=False).device / GIB
    assert need > 0.95 * 80
    assert f"needs {need:.1f} GiB per GPU, {need - 0.95 * 80:.1f} GiB more than the 76.0 GiB usable" in msg
    # each suggested change fits when applied (ZeRO-2/3 shard the 18 B/param of states over 8 GPUs)
    zero3 = estimate_memory(LLAMA7B, replace(lay, zero_stage=3).memory_config("megatron", 4096), A100,
                            suggest=False).device / GIB
    assert f"zero 3 ({zero3:.1f} GiB)" in msg and zero3 <= 0.95 * 80
    assert e.value.param == ("tp", "pp", "dp", "micro_batch", "zero", "recompute")
    assert e.value.for_cli().startswith("the layout --tp 1, --pp 1, --dp 8, --zero 0, --micro-batch 2, "
                                        "--recompute none needs")


def test_fixes_combines_changes_when_no_single_one_fits():
    lay = Layout(gpus=8, dp=8, tp=1, pp=1, zero_stage=0, micro_batch=8, grad_accum=16, global_batch=1024,
                 recompute="none", sp=False)
    out = layout.fixes(LLAMA7B, lay, A100, 4096, 8, "megatron")
    assert len(out) == 1 and out[0].startswith("recompute full + micro_batch 1 + zero 3 (")


@pytest.mark.parametrize("kw,param,cli", [
    (dict(tp=3), "tp", "--tp 3 must divide the 32 attention heads"),
    (dict(pp=3), "pp", "--pp 3 must divide the 32 layers"),
    (dict(tp=16), "tp", "--tp 16 exceeds the 8 GPUs per node"),
    (dict(tp=0), "tp", "--tp must be a positive integer"),
    (dict(micro_batch=1.5), "micro_batch", "--micro-batch must be a positive integer"),
    (dict(zero=4), "zero", "--zero must be a ZeRO stage"),
    (dict(recompute="some"), "recompute", "--recompute must be one of none, selective, full"),
    (dict(pp=2, zero=3), ("zero", "pp"), "--zero 3 needs --pp 1"),
    (dict(gpus=8, tp=2, pp=2, dp=4), ("gpus", "tp", "pp", "dp"), "--gpus 8 disagrees with the layout"),
    (dict(gpus=12, tp=8), ("tp",), "--tp 8 must divide gpus 12"),
    (dict(tp=2, pp=2, dp=2, deadline_days=3), "deadline_days", "--deadline-days cannot move the GPU count"),
    (dict(framework="jax"), "framework", "--framework must be one of megatron, deepspeed, hf, torchtune"),
    (dict(params=7e9), "params", "--params or a model shape, not both"),
])
def test_layout_and_shape_errors_name_the_keyword(kw, param, cli):
    with pytest.raises(ScalePlanError) as e:
        plan_budget(**{**LLAMA2_7B_TOKENS, **kw})
    assert e.value.param == param and "--" not in str(e.value)
    assert cli in e.value.for_cli()


def test_partial_pins_round_the_gpu_count_to_their_product():
    # 1e22 FLOPs: 30 days on whole A100 nodes; tp·pp = 8·4 = 32 must divide the GPUs, so the count is a multiple of 32
    p = plan_budget(flops=1e22, gpu="a100-80", tp=8, pp=4)
    assert p.layout.gpus % 32 == 0 and (p.layout.tp, p.layout.pp) == (8, 4)


# ---------------------------------------------------------------- a given model shape, a framework
def test_given_shape_fixes_n_and_the_law_picks_d():
    p = plan_budget(flops=1e22, shape=LLAMA7B, gpu="h100")
    assert p.params == N7B and p.shape == LLAMA7B
    assert p.tokens == pytest.approx(1e22 / (6 * N7B))
    q = plan_budget(shape=LLAMA7B, gpu="h100")  # no budget: D compute-optimal for this N under the law
    assert q.tokens == pytest.approx(plan_budget(params=N7B, gpu="h100").tokens)
    assert q.assumptions["shape_rule"] == "given: custom (6,738,415,616 params)"


def test_given_moe_shape_counts_active_parameters():
    from scaling_planner.model import get_preset

    mix = get_preset("mixtral-8x7b")
    p = plan_budget(flops=1e22, shape=mix, gpu="h100", gpus=64)
    assert p.params == mix.params_active < mix.params_total  # C = 6·N_active·D
    assert p.tokens == pytest.approx(1e22 / (6 * mix.params_active))
    assert any(n.startswith("MoE: the law was applied to the") for n in p.notes)


def test_framework_decides_the_memory_profile():
    kw = dict(tp=1, pp=1, dp=8, micro_batch=1, zero=3, recompute="full", **LLAMA2_7B_TOKENS)
    mega, hf = plan_budget(**kw), plan_budget(framework="hf", **kw)
    assert mega.memory.config.framework == "megatron" and hf.memory.config.framework == "hf"
    assert mega.layout.memory_gib != hf.layout.memory_gib
    assert mega.to_dict()["framework"] == "megatron" and hf.to_dict()["framework"] == "hf"
    assert mega.to_dict()["layout"]["ep"] == 1
