"""Mutations of the planner mechanisms (scaling_planner/planner/); see tests/mutations/__init__.py.

Each stubs one mechanism through the module attribute the planner calls it by; the killing tests are in
tests/test_planner_mechanisms.py (hand calculations from docs/planning.md and its worked examples) and
tests/test_planner.py (published numbers)."""

from __future__ import annotations

from . import Mutation

TESTS = ("tests/test_planner_mechanisms.py", "tests/test_planner.py")


def _timing():
    from scaling_planner.planner import timing

    return timing


def _layout():
    from scaling_planner.planner import layout

    return layout


def _defaults():
    from scaling_planner.planner import defaults

    return defaults


def _allocation():
    from scaling_planner.planner import allocation

    return allocation


def _zero(*a, **k):
    return 0.0


def _constant_throughput(mp):
    mp.setattr(_timing(), "throughput", lambda *a, **k: (1.0, {"tp_comm": 0.0, "pp_bubble": 0.0, "pp_comm": 0.0,
                                                               "dp_comm_exposed": 0.0, "recompute": 0.0}))


def _no_zero_rule(mp):
    mp.setattr(_layout(), "zero_stages", lambda pp, dp: iter((0, 1, 2, 3) if dp > 1 else (0,)))


def _chinchilla_point(law, C, inference_tokens):
    N0, D0 = (float(x) for x in law.optimal(C))
    base = 6 * N0 * D0 + 2 * N0 * inference_tokens
    return {"params": N0, "tokens": D0, "loss": float(law.loss(N0, D0)), "train_flops": 6 * N0 * D0,
            "lifetime_flops": base, "chinchilla_lifetime_flops": base, "saving_fraction": 0.0,
            "chinchilla_params": N0}


def _days_without_goodput(mp):
    import scaling_planner.planner.defaults as d

    mp.setattr(_timing(), "flops_per_gpu_day", lambda peak, mfu, goodput: peak * mfu * d.SECONDS_PER_DAY)


MUTATIONS: list[Mutation] = [
    Mutation("planner.throughput.constant", "layout throughput model returns 1 for every layout",
             _constant_throughput, TESTS),
    Mutation("planner.throughput.tp_comm_zero", "TP communication penalty is 0",
             lambda mp: mp.setattr(_timing(), "tp_comm", _zero), TESTS),
    Mutation("planner.throughput.pp_bubble_zero", "pipeline bubble penalty is 0",
             lambda mp: mp.setattr(_timing(), "pp_bubble", _zero), TESTS),
    Mutation("planner.throughput.pp_comm_zero", "PP point-to-point penalty is 0",
             lambda mp: mp.setattr(_timing(), "pp_comm", _zero), TESTS),
    Mutation("planner.throughput.dp_exposed_zero", "exposed DP communication penalty is 0",
             lambda mp: mp.setattr(_timing(), "dp_exposed", _zero), TESTS),
    Mutation("planner.throughput.recompute_free", "full recompute costs no throughput",
             lambda mp: mp.setattr(_timing(), "recompute_factor", lambda recompute: 1.0), TESTS),
    Mutation("planner.layout.memory_filter_off", "the layout memory filter accepts every layout",
             lambda mp: mp.setattr(_layout(), "fits", lambda est, gpu, headroom: est is not None), TESTS),
    Mutation("planner.layout.zero23_with_pp", "ZeRO-2/3 allowed with pipeline parallelism",
             _no_zero_rule, TESTS),
    Mutation("planner.layout.why_lost_blank", "why an alternative lost is blank",
             lambda mp: mp.setattr(_layout(), "why_lost", lambda best, alt: ""), TESTS),
    Mutation("planner.mfu.a100_0.40", "default MFU table: A100 0.45 -> 0.40",
             lambda mp: mp.setitem(_defaults().MFU_DEFAULTS, "a100", 0.40), TESTS),
    Mutation("planner.mfu.small_model_dropped", "no MFU correction below 3B params",
             lambda mp: mp.setattr(_defaults(), "MFU_SMALL_MODEL", (3e9, 0.0)), TESTS),
    Mutation("planner.mfu.large_cluster_dropped", "no MFU correction above 4,096 GPUs",
             lambda mp: mp.setattr(_defaults(), "MFU_LARGE_CLUSTER", (4096, 0.0)), TESTS),
    Mutation("planner.deepseek.batch_constant", "DeepSeek B_opt coefficient 0.2920 -> 0.3",
             lambda mp: mp.setattr(_defaults(), "DEEPSEEK_BATCH", (0.3, 0.3271)), TESTS),
    Mutation("planner.deepseek.lr_constant", "DeepSeek eta_opt coefficient 0.3118 -> 0.3",
             lambda mp: mp.setattr(_defaults(), "DEEPSEEK_LR", (0.3, -0.1250)), TESTS),
    Mutation("planner.allocation.inference_is_chinchilla", "inference-aware allocation returns the Chinchilla point",
             lambda mp: mp.setattr(_allocation(), "inference_aware", _chinchilla_point), TESTS),
    Mutation("planner.allocation.repetition_ignored", "data-constrained loss ignores repetition (fresh-data loss)",
             lambda mp: mp.setattr(_allocation(), "repeated_data_loss",
                                   lambda law, rep, N, D, unique_tokens: law.loss(N, D)), TESTS),
    Mutation("planner.allocation.interval_empty", "the law's bootstrap interval is empty",
             lambda mp: mp.setattr(_allocation(), "law_interval", lambda law, C, fixed=None: {}), TESTS),
    Mutation("planner.time.no_goodput", "the days formula leaves out goodput",
             _days_without_goodput, TESTS),
]
