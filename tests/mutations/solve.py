"""Mutations of the fit rule and the "what fits" solver (docs/memory.md §7.1, §7.2); see tests/mutations/__init__.py."""

from __future__ import annotations

from . import Mutation

TESTS = ("tests/test_memory_solve_measure.py",)


def _fit_at_100_percent(mp):
    from scaling_planner.memory import result
    from scaling_planner.planner import layout
    from scaling_planner.units import GIB

    rule = lambda device, gpu_gib, headroom=0.0: device / GIB <= gpu_gib  # noqa: E731
    mp.setattr(result, "fits_gpu", rule)
    mp.setattr(layout, "fits_gpu", rule)


def _gallop_only(mp):
    from scaling_planner.memory import solve

    def last_true(ok, lo, hi):
        good, x = lo, lo
        while x < hi and ok(min(2 * x, hi)):
            good = x = min(2 * x, hi)
        return good

    mp.setattr(solve, "_last_true", last_true)


MUTATIONS = [
    Mutation("memory.fit.no_headroom", "the fit rule counts 100% of the GPU as usable (no 5% kept back)",
             _fit_at_100_percent, TESTS),
    Mutation("memory.solve.no_bisection", "the solver stops after galloping (a power of two, not the largest value)",
             _gallop_only, TESTS),
]
