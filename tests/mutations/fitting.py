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


GROUPS = "tests/test_fitting_groups.py"


def _groups_not_separated(mp):
    """Every --group-by group gets every row of the file (the condition columns are not used to split)."""
    from scaling_planner.io import conditions

    real = conditions.split_rows

    def every_row(frame, by, path):
        return {g: (k, np.arange(len(frame))) for g, (k, _rows) in real(frame, by, path).items()}

    mp.setattr(conditions, "split_rows", every_row)


def _where_ignored(mp):
    from scaling_planner.io import conditions

    mp.setattr(conditions, "filter_rows",
               lambda frame, lines, where, path: (frame, lines, f"rows where {where}: {len(frame)} of {len(frame)}"))


def _groups_smallest_budget(mp):
    """The groups compared at the smallest of their largest computes instead of the largest across all groups."""
    from scaling_planner.fitting import groups

    real = groups.common_budget

    def smallest(tables, at_flops):
        if at_flops is not None:
            return real(tables, at_flops)
        return min(float(t.C.max()) for t in tables.values()), groups.COMMON_BUDGET

    mp.setattr(groups, "common_budget", smallest)


def _holdout_size_by_compute(mp):
    """--holdout-by size ignored: the K largest-compute runs are held out whatever was asked."""
    from scaling_planner import fitting

    real = fitting.holdout_runs
    mp.setattr(fitting, "holdout_runs", lambda table, k, by="compute": real(table, k, "compute"))


PUBLISHED = "tests/test_fitting_published.py"


def _whole_profile_parabola(mp):
    """approach2's parabola fitted to every size of a budget, not the window centred on its lowest loss."""
    from scaling_planner.fitting import approach2

    def whole(x, y):
        i = int(np.argmin(y))
        return np.full(x.shape, 0 < i < len(x) - 1 and x.min() < x[i] < x.max())

    mp.setattr(approach2, "centred_window", whole)


def _interpolated_unweighted(mp):
    """Porian et al.'s fit of N*(C) without the 1/std(ln N*)^2 weights."""
    from scaling_planner.fitting import approach2

    real = approach2._weighted_allocation
    mp.setattr(approach2, "_weighted_allocation", lambda C, N, w: real(C, N, None))


def _interpolated_linear(mp):
    """The IsoFLOP curve through the points interpolated linearly (log-log) instead of by an Akima spline."""
    import scipy.interpolate

    class Linear:
        def __init__(self, x, y, axis=0):
            self.x, self.y = np.asarray(x), np.moveaxis(np.asarray(y), axis, 0)

        def __call__(self, xs):
            flat = self.y.reshape(len(self.x), -1)
            out = np.stack([np.interp(xs, self.x, flat[:, j]) for j in range(flat.shape[1])], axis=-1)
            return out.reshape((len(np.atleast_1d(xs)),) + self.y.shape[1:]) if np.ndim(xs) else out.ravel()[0]

    mp.setattr(scipy.interpolate, "Akima1DInterpolator", Linear)


def _repetition_no_decay(mp):
    """Muennighoff's effective count without the decay: every repetition worth a fresh item (U·(1 + R))."""
    from scaling_planner import laws

    mp.setattr(laws, "repetition_effective", lambda U, R, R_star: np.asarray(U, float) * (1 + np.asarray(R, float)))


def _no_excess_parameters(mp):
    """U_N = N: no run counts as having more parameters than compute-optimal for its unique tokens (R_N = 0)."""
    from scaling_planner import laws

    real = laws.repetition_terms

    def no_excess(N, D, unique_tokens, A, B, alpha, beta):
        U_N, R_N, U_D, R_D = real(N, D, unique_tokens, A, B, alpha, beta)
        return np.broadcast_to(np.asarray(N, float), np.shape(U_N)), np.zeros(np.shape(R_N)), U_D, R_D

    mp.setattr(laws, "repetition_terms", no_excess)


def _base_on_every_single_epoch_run(mp):
    """data_constrained's base law fitted to every single-epoch run, over-parameterised ones included."""
    from scaling_planner.fitting import data_constrained

    real = data_constrained._fit_base
    mp.setattr(data_constrained, "_fit_base", lambda table, single, **kw: real(table, single, **{**kw, "rounds": 1}))


SPEED = "tests/test_fitting_speed_forms.py"


def _varpro_unconstrained(mp):
    """The projection's least squares on all three columns only: negative E, A or B not replaced by the best
    nonnegative subset (NNLS dropped)."""
    from scaling_planner.fitting import approach3

    mp.setattr(approach3, "NNLS_SUBSETS", ((0, 1, 2),))


def _tie_ignored(mp):
    """fit(tie_exponents=True) fits two exponents."""
    from scaling_planner.fitting import registry

    spec = registry.REGISTRY["approach3"]
    real = spec.fit
    mp.setitem(registry.REGISTRY, "approach3",
               replace(spec, fit=lambda table, tie_exponents=False, **kw: real(table, **kw)))


def _tied_gradient_without_D(mp):
    """The tied exponent's gradient without the D term's share (only d/d alpha of A/N^alpha)."""
    from scaling_planner.fitting import approach3, objective

    real = objective.chinchilla_fg

    def fg(lnN, lnD, lnL, *, tied=False, **kw):
        inner = real(lnN, lnD, lnL, **kw)
        if not tied:
            return inner

        def f(theta, rows):
            F, G = inner(np.c_[theta, theta[:, 3]], rows)
            return F, G[:, :4]

        return f

    mp.setattr(objective, "chinchilla_fg", fg)
    mp.setattr(approach3, "chinchilla_fg", fg)


def _blocks_ignore_rows(mp):
    """The blocked objective weights each block with the first problems' weights, not its own rows'."""
    from scaling_planner.fitting import objective

    real = objective._weights_block
    mp.setattr(objective, "_weights_block", lambda weights, rows, rs, ps: real(weights, None, rs, ps))


def _plain_underscores(mp):
    """The vectorised number parser takes 1_0 (which float() reads as 10) for a plain number."""
    from scaling_planner.io import runlog

    chars = runlog._PLAIN_CHARS.copy()
    chars[ord("_")] = True
    mp.setattr(runlog, "_PLAIN_CHARS", chars)


def _typed_read_without_raw_text(mp):
    """Messages about a typed CSV column quote the parsed float, not the file's text."""
    from scaling_planner.io import runlog

    real = runlog._read_csv_typed

    def typed(*a):
        out = real(*a)
        if out is not None:
            out[0].attrs.clear()
        return out

    mp.setattr(runlog, "_read_csv_typed", typed)


MUTATIONS: list[Mutation] = [
    Mutation("fitting.approach3.varpro_unconstrained", "approach3's variable projection without the nonnegativity "
             "(least squares on all three columns only)", _varpro_unconstrained, (SPEED,)),
    Mutation("fitting.approach3.tie_ignored", "approach3 ignores tie_exponents (two exponents)", _tie_ignored,
             (SPEED,)),
    Mutation("fitting.objective.tied_gradient_without_D", "tied exponent's gradient misses the D term",
             _tied_gradient_without_D, (SPEED,)),
    Mutation("fitting.objective.blocks_ignore_rows", "blocked objective weights a block with the wrong problems' "
             "weights", _blocks_ignore_rows, (SPEED,)),
    Mutation("io.runlog.plain_underscores", "the vectorised number parser accepts underscores that are not thousands "
             "groups", _plain_underscores, (SPEED,)),
    Mutation("io.runlog.typed_read_without_raw_text", "messages about typed CSV cells quote the float, not the file's "
             "text", _typed_read_without_raw_text, (SPEED,)),
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
    Mutation("fitting.groups.not_separated", "--group-by: every group fitted on every row of the file",
             _groups_not_separated, (GROUPS,)),
    Mutation("fitting.groups.where_ignored", "--where: the row filter keeps every row", _where_ignored, (GROUPS,)),
    Mutation("fitting.groups.smallest_budget", "--group-by: groups compared at the smallest group's largest compute",
             _groups_smallest_budget, (GROUPS,)),
    Mutation("fitting.holdout.size_by_compute", "--holdout-by size holds out the largest-compute runs instead",
             _holdout_size_by_compute, (GROUPS,)),
    Mutation("fitting.approach2.whole_profile_parabola", "approach2 parabolas on every size, not the centred window",
             _whole_profile_parabola, (PUBLISHED,)),
    Mutation("fitting.approach2.interpolated_unweighted", "interpolated minima fitted without Porian's 1/std² weights",
             _interpolated_unweighted, (PUBLISHED,)),
    Mutation("fitting.approach2.interpolated_linear", "IsoFLOP curves interpolated linearly, not by an Akima spline",
             _interpolated_linear, (PUBLISHED,)),
    Mutation("laws.repetition_effective.no_decay", "repeated tokens and excess parameters never lose value",
             _repetition_no_decay, (PUBLISHED,)),
    Mutation("laws.repetition_terms.no_excess_params", "U_N = N: no excess parameters (R_N = 0)",
             _no_excess_parameters, (PUBLISHED,)),
    Mutation("fitting.data_constrained.base_on_every_single_epoch_run",
             "data_constrained base fitted to over-parameterised single-epoch runs too",
             _base_on_every_single_epoch_run, (PUBLISHED,)),
]
