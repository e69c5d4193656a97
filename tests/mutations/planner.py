"""Mutations of the planner mechanisms (scaling_planner/planner/); see tests/mutations/__init__.py.

Each stubs one mechanism through the module attribute the planner calls it by; the killing tests are in
tests/test_planner_mechanisms.py (hand calculations from docs/planning.md and its worked examples) and
tests/test_planner.py (published numbers)."""

from __future__ import annotations

from dataclasses import replace

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


def _constant_step(mp):
    from scaling_planner.planner.steptime import StepTime

    keys = ("compute", "memory_bound", "tp_comm", "dp_comm_exposed", "pp_bubble", "ep_comm", "recompute")

    def step(shape, gpu, lay, seq, gpn, framework):
        tps = lay.global_batch * seq / 1.0
        return StepTime(seconds=1.0, tokens_per_s=tps, breakdown={k: float(k == "compute") for k in keys},
                        mfu=0.5, hfu=0.5, assumptions={})
    mp.setattr(_timing(), "layout_step", step)


def _days_off_the_model(mp):
    """The plan's days are not D / tokens_per_s / goodput: 20% off the step model's throughput."""
    from scaling_planner.planner import plan

    orig = _timing().days_from_throughput
    mp.setattr(plan.timing, "days_from_throughput", lambda tokens, tps, goodput: orig(tokens, tps, goodput) * 1.2)


def _no_zero_rule(mp):
    mp.setattr(_layout(), "zero_stages", lambda pp, dp: iter((0, 1, 2, 3) if dp > 1 else (0,)))


def _chinchilla_point(law, C, inference_tokens):
    N0, D0 = (float(x) for x in law.optimal(C))
    base = 6 * N0 * D0 + 2 * N0 * inference_tokens
    return {"params": N0, "tokens": D0, "loss": float(law.loss(N0, D0)), "train_flops": 6 * N0 * D0,
            "lifetime_flops": base, "chinchilla_lifetime_flops": base, "saving_fraction": 0.0,
            "chinchilla_params": N0}


def _pins_ignored(mp):
    L = _layout()
    orig = L.candidates
    mp.setattr(L, "candidates", lambda shape, gpus, gb, gpn, fixed=None: orig(shape, gpus, gb, gpn, None))


def _days_without_goodput(mp):
    import scaling_planner.planner.defaults as d

    mp.setattr(_timing(), "flops_per_gpu_day", lambda peak, mfu, goodput: peak * mfu * d.SECONDS_PER_DAY)


def _modelled_days_without_goodput(mp):
    import scaling_planner.planner.defaults as d

    mp.setattr(_timing(), "days_from_throughput", lambda tokens, tps, goodput: tokens / tps / d.SECONDS_PER_DAY)


def _gpus_not_resized(mp):
    from scaling_planner.planner import plan

    mp.setattr(plan, "_resize_for_days", lambda found, G, *a, **k: (found, G))


def _budget_from_table(mp):
    """--gpus --days: the budget from the MFU table, not iterated with the step model."""
    from scaling_planner.planner import plan

    orig = plan._hardware_budget
    mp.setattr(plan, "_hardware_budget", lambda *a, **k: orig(*a[:-1], None) if len(a) == 10 else orig(*a, **k))


def _ep_not_searched(mp):
    from scaling_planner.planner import layout

    mp.setattr(layout, "ep_degrees", lambda shape, dp, ep=None: iter((1,)))


def _moe_memory_ep_ignored(mp):
    from scaling_planner.planner import layout

    orig = layout.Layout.memory_config
    mp.setattr(layout.Layout, "memory_config", lambda self, fw, seq: replace(orig(self, fw, seq), ep=1))


MUTATIONS: list[Mutation] = [
    Mutation("planner.ep_not_searched", "expert parallelism never searched (EP 1 for MoE)", _ep_not_searched, TESTS),
    Mutation("planner.memory_ep_ignored", "a layout's EP not passed to the memory model", _moe_memory_ep_ignored,
             TESTS),
    Mutation("planner.steptime.constant", "every layout gets the same step (the step-time model is not consulted)",
             _constant_step, TESTS),
    Mutation("planner.time.days_off_the_model", "the plan's days are not D / tokens_per_s / goodput (20% longer)",
             _days_off_the_model, TESTS),
    Mutation("planner.time.modelled_no_goodput", "days from the modelled throughput leave out goodput",
             _modelled_days_without_goodput, TESTS),
    Mutation("planner.gpus.not_resized", "the GPU count stays the MFU-table guess (not re-sized by the model)",
             _gpus_not_resized, TESTS),
    Mutation("planner.budget.from_table", "GPUs x days budget from the MFU table, not the step model",
             _budget_from_table, TESTS),
    Mutation("planner.layout.memory_filter_off", "the layout memory filter accepts every layout",
             lambda mp: mp.setattr(_layout(), "fits", lambda est, gpu, headroom: est is not None), TESTS),
    Mutation("planner.layout.zero23_with_pp", "ZeRO-2/3 allowed with pipeline parallelism",
             _no_zero_rule, TESTS),
    Mutation("planner.layout.pins_ignored", "pinned layout keywords (tp, pp, dp, ...) do not constrain the search",
             _pins_ignored, TESTS),
    Mutation("planner.layout.fixes_none", "a pinned layout that does not fit gets no suggested change",
             lambda mp: mp.setattr(_layout(), "fixes", lambda *a, **k: []), TESTS),
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
