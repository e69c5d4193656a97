"""Mutations of the fitting mechanisms and the law formulas; see tests/mutations/__init__.py.

Each stubs out one mechanism through the module attribute (or registry entry) the code calls it by, and names the
test files that must then fail. The killing tests are in tests/test_fitting_mechanisms.py (synthetic data from a law
with known parameters, or published numbers).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import Mutation

MECH = "tests/test_fitting_mechanisms.py"


def _no_bracketing(mp):
    from scaling_planner.fitting import approach1

    mp.setattr(approach1, "bracketed", lambda P, w, margin: np.isfinite(P).any(axis=0))


def _envelope_all_points(mp):
    """The envelope replaced by every covered (size, compute) cell: no minimum over sizes."""
    from scaling_planner.fitting import approach1

    def every_cell(self, rows=None):
        P = np.minimum.reduceat(self.lM, self.starts, axis=0)
        s, j = np.nonzero(np.isfinite(P))
        return self.grid[j], self.sizes[s], np.exp(P[s, j]), 0

    mp.setattr(approach1.Envelope, "__call__", every_cell)


def _no_grouping(mp):
    """Every point its own IsoFLOP budget: compute values are not grouped (nor the budget column read)."""
    from scaling_planner.fitting import approach2

    mp.setattr(approach2, "group_budgets", lambda table, tol=0.1: np.asarray(table.C, dtype=float))


def _vertex_at_min_point(mp):
    """The IsoFLOP vertex taken at the sampled size with the lowest loss instead of the parabola's minimum."""
    from scaling_planner.fitting import approach2

    def at_min(xs, ys, c0, c1, c2):
        i = int(np.argmin(ys))
        return np.broadcast_to(xs[i], np.shape(c1)), np.broadcast_to(ys[i], np.shape(c1))

    mp.setattr(approach2, "vertex", at_min)


def _points(method: str, points: str):
    def apply(mp):
        from scaling_planner.fitting import registry

        mp.setitem(registry.REGISTRY, method, replace(registry.REGISTRY[method], points=points))

    return apply


def _kaplan_all_points(mp):
    from scaling_planner.fitting import kaplan

    mp.setattr(kaplan, "best_per_value", lambda x, loss, run, rel=1e-6: np.arange(len(x)))


def _no_frontier(mp):
    from scaling_planner.fitting import kaplan

    mp.setattr(kaplan, "compute_frontier", lambda C, loss: np.arange(len(C)))


def _G_wrong_exponent(mp):
    from scaling_planner import laws

    mp.setattr(laws, "chinchilla_G", lambda A, B, alpha, beta:
               np.asarray(alpha * A / (beta * B), dtype=float) ** (1.0 / (alpha * beta)))


def _loss_without_E(mp):
    from scaling_planner import laws

    real = laws.chinchilla_loss
    mp.setattr(laws, "chinchilla_loss", lambda N, D, E, A, B, alpha, beta: real(N, D, 0.0, A, B, alpha, beta))


def _ci_is_point(mp):
    """The bootstrap interval collapsed onto the centre of the replicates (the point estimate)."""
    from scaling_planner.fitting import common

    def point(samples, level=0.95):
        s = np.asarray(samples, dtype=float)
        s = s[np.isfinite(s)]
        m = float(np.median(s)) if s.size else float("nan")
        return [m, m]

    mp.setattr(common, "percentile_ci", point)


def _at_flops_ignored(mp):
    from scaling_planner import fitting

    real = fitting.report_budget
    mp.setattr(fitting, "report_budget", lambda table, at_flops: real(table, None))


MUTATIONS: list[Mutation] = [
    Mutation("fitting.approach1.no_bracketing", "approach1 keeps envelope winners that are not bracketed",
             _no_bracketing, (MECH,)),
    Mutation("fitting.approach1.all_points", "approach1 fits every covered (size, compute) cell, not the envelope",
             _envelope_all_points, (MECH,)),
    Mutation("fitting.approach2.no_grouping", "approach2 makes every point its own budget (no grouping of C)",
             _no_grouping, (MECH,)),
    Mutation("fitting.approach2.vertex_at_min_point", "approach2 vertex = lowest sampled point, not the parabola",
             _vertex_at_min_point, (MECH,)),
    Mutation("fitting.approach3.all_checkpoints", "approach3 fits every checkpoint instead of final losses",
             _points("approach3", "all"), (MECH,)),
    Mutation("fitting.kaplan_C.final_points", "kaplan_C sees final losses only, not every checkpoint",
             _points("kaplan_C", "final"), (MECH,)),
    Mutation("fitting.kaplan_N.all_points", "kaplan_N fits every point, not the best loss per size",
             _kaplan_all_points, (MECH,)),
    Mutation("fitting.kaplan_C.no_frontier", "kaplan_C fits every point, not the compute frontier",
             _no_frontier, (MECH,)),
    Mutation("laws.chinchilla_G.wrong_exponent", "Chinchilla G with exponent 1/(alpha*beta)",
             _G_wrong_exponent, (MECH,)),
    Mutation("laws.chinchilla_loss.no_E", "E + A/N^alpha + B/D^beta without E", _loss_without_E, (MECH,)),
    Mutation("fitting.bootstrap.ci_is_point", "bootstrap 95% interval = [median, median] of the replicates",
             _ci_is_point, (MECH,)),
    Mutation("fitting.at_flops_ignored", "fit(at_flops=...) ignored: the largest compute in the data instead",
             _at_flops_ignored, (MECH,)),
]
