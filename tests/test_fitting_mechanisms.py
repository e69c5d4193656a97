"""One test per fitting mechanism, each against a known answer: synthetic data drawn from a law with known parameters
(the true parameters are the expected answer), or published numbers. tests/mutations/fitting.py stubs each mechanism
out and names the test here that must then fail (run: python -m tests.mutations fitting).

Ground-truth law: Besiroglu et al. 2024 (Epoch AI), "Chinchilla Scaling: A replication attempt", arXiv 2404.10102,
Huber fit (notebook cells 24-25): E = 1.8172, A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658
(fits/epoch2024.json; docs/fitting.md §2.3).
"""

import math

import numpy as np
import pytest

from scaling_planner import laws
from scaling_planner.errors import ScalePlanError
from scaling_planner.fitting import fit, fit_method, registry
from scaling_planner.io.runlog import from_arrays

from .test_fitting import schedule_runs
from .test_fitting_degenerate import A_TRUE, continuous_size_log, rising_table

E, A, B, ALPHA, BETA = 1.8172, 482.01, 2085.43, 0.3478, 0.3658


def hand_loss(N, D):
    """E + A/N^alpha + B/D^beta, written out here independently of scaling_planner.laws."""
    return E + A / N**ALPHA + B / D**BETA


def hand_optimum(C):
    """Hoffmann et al. 2022 Eq. 4 by hand: G = (alpha·A/(beta·B))^(1/(alpha+beta)), N = G·(C/6)^a, D = (C/6)^b / G."""
    G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    a, b = BETA / (ALPHA + BETA), ALPHA / (ALPHA + BETA)
    return G * (C / 6) ** a, (C / 6) ** b / G


# ------------------------------------------------------------------ law formulas (scaling_planner/laws.py)
def test_chinchilla_G_and_optimum_match_the_hand_calculation():
    G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    assert laws.chinchilla_G(A, B, ALPHA, BETA) == pytest.approx(G, rel=1e-12)
    for C in (1e21, 5.76e23, 1e26):
        N, D = laws.chinchilla_optimal(C, E, A, B, ALPHA, BETA)
        hN, hD = hand_optimum(C)
        assert N == pytest.approx(hN, rel=1e-12) and D == pytest.approx(hD, rel=1e-12)
    # and the published number: Besiroglu et al. 2024 put Gopher's budget (5.76e23 FLOPs) at ~72B params, ~18 tokens
    # per param (docs/fitting.md §2.2 table: 72.2B, D/N 18.4)
    N, D = laws.chinchilla_optimal(5.76e23, E, A, B, ALPHA, BETA)
    assert N == pytest.approx(72.2e9, rel=0.01) and D / N == pytest.approx(18.4, rel=0.02)


def test_chinchilla_loss_is_E_plus_both_terms():
    N, D = np.array([1e8, 7e9, 7e10]), np.array([2e9, 1.4e11, 1.4e12])
    assert np.allclose(laws.chinchilla_loss(N, D, E, A, B, ALPHA, BETA), hand_loss(N, D), rtol=1e-14)
    # at infinite data and size the loss is the irreducible E
    assert laws.chinchilla_loss(1e30, 1e30, E, A, B, ALPHA, BETA) == pytest.approx(E, rel=1e-6)
    law = laws.ScalingLaw(name="epoch", form="chinchilla",
                          params={"E": E, "A": A, "B": B, "alpha": ALPHA, "beta": BETA})
    assert law.loss(7e9, 1.4e11) == pytest.approx(hand_loss(7e9, 1.4e11), rel=1e-14)


def test_kaplan_joint_law_matches_eq_1_5():
    # Kaplan et al. 2020 Table 2: N_c = 6.4e13, D_c = 1.8e13, alpha_N = 0.076, alpha_D = 0.103
    p = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    hand = ((6.4e13 / 1e9) ** (0.076 / 0.103) + 1.8e13 / 1e10) ** 0.103
    assert laws.kaplan_joint_loss(1e9, 1e10, **p) == pytest.approx(hand, rel=1e-13)
    assert math.exp(laws.kaplan_joint_log_loss(1e9, 1e10, **p)) == pytest.approx(hand, rel=1e-12)


def test_every_fitted_law_answers_loss_and_optimal():
    """A fit becomes a ScalingLaw (its spec's law form) that answers loss(N, D) and optimal(C) like a published one."""
    from scaling_planner.fitting.result import FitResult

    r = FitResult("approach3", {"E": E, "A": A, "B": B, "alpha": ALPHA, "beta": BETA}, n_points=10)
    law = r.to_law()
    assert law.form == registry.get("approach3").law_form == "chinchilla"
    assert law.loss(7e9, 1.4e11) == pytest.approx(hand_loss(7e9, 1.4e11), rel=1e-14)
    assert law.optimal(1e23)[0] == pytest.approx(hand_optimum(1e23)[0], rel=1e-12)
    k = FitResult("kaplan_C", {"C_c": 2.7e28, "alpha_C": 0.05}, n_points=10).to_law()
    assert k.form == "power" and k.variable == "C" and k.params == {"X_c": 2.7e28, "alpha": 0.05}
    assert k.loss(C=1e21) == pytest.approx((2.7e28 / 1e21) ** 0.05, rel=1e-14)


# ------------------------------------------------------------------ approach3: final checkpoints only
def cosine_curves(overstate=0.05):
    """Runs (6 sizes x 3 schedule lengths) whose FINAL losses follow the law exactly; a checkpoint midway through a
    schedule overstates the loss of a run trained to that length (docs/fitting.md §3.4), here by
    overstate·(1 - D/D_final)."""
    run, N, D, L = [], [], [], []
    for n in np.geomspace(5e7, 2e9, 6):
        for tpp in (10, 30, 90):
            d_end = tpp * n
            d = np.geomspace(d_end / 10, d_end, 8)
            run += [f"{n:.3g}-{tpp}"] * d.size
            N += [n] * d.size
            D += list(d)
            L += list(hand_loss(n, d) * (1 + overstate * (1 - d / d_end)))
    return from_arrays(run=np.array(run), N=np.array(N), D=np.array(D), loss=np.array(L))


def test_approach3_fits_final_checkpoints_and_recovers_the_law():
    t = cosine_curves()
    rep = fit(t, ["approach3"], bootstrap=0)
    r = rep.get("approach3")
    assert r.n_points == t.n_runs == 18  # one point per run: its last checkpoint
    assert r.params["alpha"] == pytest.approx(ALPHA, abs=0.01)
    assert r.params["beta"] == pytest.approx(BETA, abs=0.01)
    assert r.params["E"] == pytest.approx(E, abs=0.02)


# ------------------------------------------------------------------ kaplan_N: best final loss per size
def test_kaplan_N_takes_the_best_loss_per_size():
    # 8 sizes x 4 token counts; the longest run of each size follows L(N) = (N_c/N)^alpha_N (Kaplan Table 5:
    # N_c = 8.8e13, alpha_N = 0.076), the shorter ones lie above it by amounts that differ per size.
    Nc, aN = 8.8e13, 0.076
    N, D, L = [], [], []
    for i, n in enumerate(np.geomspace(1e7, 1e10, 8)):
        for k, d in enumerate((1e9, 3e9, 1e10, 3e10)):
            N.append(n)
            D.append(d)
            L.append((Nc / n) ** aN * (1 + 0.04 * (3 - k) * (1 + i)))
    r = fit_method("kaplan_N", from_arrays(N=N, D=D, loss=L), bootstrap=0)
    assert r.n_points == 8
    assert r.params["alpha_N"] == pytest.approx(aN, rel=1e-6)
    assert r.params["N_c"] == pytest.approx(Nc, rel=1e-4)


# ------------------------------------------------------------------ kaplan_C: the compute frontier
def test_kaplan_C_takes_the_compute_frontier():
    # frontier L(C) = (C_c/C)^alpha_C (Kaplan Table 5 in FLOPs: C_c = 2.7e28... here 3.1e8 PF-days = 2.68e28 FLOPs,
    # alpha_C = 0.050); each frontier point has a dominated twin with 10% more compute and 5-40% more loss.
    Cc, aC = 3.1e8 * 8.64e19, 0.050
    C = np.geomspace(1e17, 1e22, 12)
    Lf = (Cc / C) ** aC
    Cd, Ld = C * 1.1, Lf * (1.05 + 0.03 * np.arange(12))
    CC, LL = np.r_[C, Cd], np.r_[Lf, Ld]
    t = from_arrays(N=np.full(CC.size, 1e9), C=CC, loss=LL)
    r = fit_method("kaplan_C", t, bootstrap=0)
    assert r.n_points == 12
    assert r.params["alpha_C"] == pytest.approx(aC, rel=1e-6)
    assert r.params["C_c"] == pytest.approx(Cc, rel=1e-3)


def test_kaplan_C_frontier_runs_over_every_checkpoint():
    # 4 runs with 10 checkpoints each; every checkpoint on L(C) = (C_c/C)^alpha_C, except each run's final one, which
    # sits 2% above it (a cooldown-free schedule end): the frontier is made of checkpoints, not of final losses
    Cc, aC = 3.1e8 * 8.64e19, 0.050
    run, C, L = [], [], []
    for i, lo in enumerate((1e17, 1e18, 1e19, 1e20)):
        c = np.geomspace(lo, lo * 9.9, 10)
        run += [f"r{i}"] * 10
        C += list(c)
        L += list((Cc / c) ** aC * np.r_[np.ones(9), 1.02])
    t = from_arrays(run=np.array(run), N=np.repeat([1e8, 2e8, 4e8, 8e8], 10), C=np.array(C), loss=np.array(L))
    r = fit(t, ["kaplan_C"], bootstrap=0).get("kaplan_C")
    assert r.n_points >= 30  # checkpoints of every run
    assert r.params["alpha_C"] == pytest.approx(aC, rel=1e-3)


# ------------------------------------------------------------------ approach2: budgets and parabola vertices
def fixed_size_isoflops(budgets, offset=1.3, jitter=0.0, budget_column=True, seed=0):
    """IsoFLOP profiles of 7 sizes per budget around (but never at) the law's optimum: N = N_opt·offset·4^(k/3),
    k = -3..3 (the nearest size is a factor 1.3 off the optimum). Noise-free losses from the law."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        n0, _ = hand_optimum(C)
        for n in n0 * offset * 4.0 ** (np.arange(-3, 4) / 3):
            c = C * (1 + rng.uniform(-jitter, jitter))
            rows.append((n, C / (6 * n), c, C, hand_loss(n, C / (6 * n))))
    N, D, Cj, Cb, L = map(np.array, zip(*rows))
    if budget_column:
        return from_arrays(N=N, D=D, budget=Cb, loss=L)
    return from_arrays(N=N, C=Cj, loss=L)


def test_approach2_vertex_is_the_parabola_minimum_not_a_sampled_size():
    budgets = np.geomspace(1e18, 1e21, 4)
    r = fit_method("approach2", fixed_size_isoflops(budgets), bootstrap=0)
    assert len(r.info["vertices"]) == 4
    for v in r.info["vertices"]:
        n_true, _ = hand_optimum(v["budget"])
        assert v["N_opt"] == pytest.approx(n_true, rel=0.05)  # a sampled size is 1.3x off
        assert v["loss_opt"] == pytest.approx(hand_loss(n_true, v["budget"] / (6 * n_true)), rel=1e-3)
    assert r.params["a"] == pytest.approx(A_TRUE, abs=0.01)


def test_approach2_groups_jittered_compute_into_budgets():
    # no budget column, compute logged with ±3% jitter: grouping within 10% recovers the 4 budgets
    budgets = np.geomspace(1e18, 1e21, 4)
    r = fit_method("approach2", fixed_size_isoflops(budgets, jitter=0.03, budget_column=False), bootstrap=0)
    assert len(r.info["vertices"]) == 4
    assert r.params["a"] == pytest.approx(A_TRUE, abs=0.02)


# ------------------------------------------------------------------ approach1: bracketed envelope
def test_approach1_uses_only_bracketed_envelope_winners():
    # 200 continuous sizes, each run covering its own compute range: without the bracketing rule the edge winners of
    # each compute value pull a to 0.36-0.44; the truth is beta/(alpha+beta) = 0.513
    r = fit_method("approach1", continuous_size_log(0, 0.0), bootstrap=0)
    assert r.params["a"] == pytest.approx(A_TRUE, abs=0.02)
    assert r.info["unbracketed_grid_points"] > 0


def test_approach1_envelope_is_the_lowest_loss_size():
    # runs of 4 schedule lengths per size (Hoffmann Sec. 3.1); the envelope's size at each compute value is the
    # compute-optimal size, so N_opt(C) follows the law's exponent
    r = fit_method("approach1", schedule_runs(hand_loss), bootstrap=0)
    assert r.params["a"] == pytest.approx(A_TRUE, abs=0.05)
    assert r.converged


def test_approach1_refuses_when_nothing_is_bracketed():
    with pytest.raises(ScalePlanError, match="bracketed at too few compute values"):
        fit_method("approach1", rising_table(), bootstrap=0)


# ------------------------------------------------------------------ bootstrap intervals
def test_bootstrap_interval_has_width_and_covers_the_truth():
    rng = np.random.default_rng(2)
    N = np.geomspace(1e7, 1e11, 20)
    L = (8.8e13 / N) ** 0.076 * np.exp(rng.normal(0, 0.002, N.size))
    r = fit_method("kaplan_N", from_arrays(N=N, D=np.full(N.size, 1e12), loss=L), bootstrap=200)
    lo, hi = r.ci95["alpha_N"]
    assert lo < 0.076 < hi
    # an interval, not the point estimate: about ±1.96 least-squares standard errors of the log-log slope
    lx, ly = np.log(N), np.log(L)
    res = ly - np.polyval(np.polyfit(lx, ly, 1), lx)
    se = math.sqrt(res @ res / (N.size - 2) / np.sum((lx - lx.mean()) ** 2))
    assert 0.5 * 3.92 * se < hi - lo < 2 * 3.92 * se
    r3 = fit_method("approach2", fixed_size_isoflops(np.geomspace(1e18, 1e21, 4), seed=1), bootstrap=0)
    assert "a" not in r3.ci95  # no bootstrap, no interval


# ------------------------------------------------------------------ one budget for every method
def test_at_flops_sets_the_budget_of_every_method():
    t = fixed_size_isoflops(np.geomspace(1e18, 1e21, 4))
    rep = fit(t, ["approach2", "approach3"], bootstrap=0, at_flops=1e23)
    assert rep.at_flops == 1e23
    a2, a3 = rep.get("approach2"), rep.get("approach3")
    assert a2.derived["at_flops"] == a3.derived["at_flops"] == 1e23
    p = a2.params
    assert a2.derived["N_opt"] == pytest.approx(p["k_N"] * 1e23 ** p["a"], rel=1e-12)
    q = a3.params
    G = (q["alpha"] * q["A"] / (q["beta"] * q["B"])) ** (1 / (q["alpha"] + q["beta"]))
    n = G * (1e23 / 6) ** (q["beta"] / (q["alpha"] + q["beta"]))
    assert a3.derived["N_opt"] == pytest.approx(n, rel=1e-9)
    # the fit recovers the law, so its optimum at 1e23 is the law's (hand calculation)
    assert a3.derived["N_opt"] == pytest.approx(hand_optimum(1e23)[0], rel=0.02)


# ------------------------------------------------------------------ holdout: the fitted law's own loss
def test_holdout_predicts_with_the_fitted_law():
    t = cosine_curves(overstate=0.0)
    rep = fit(t, ["approach3"], bootstrap=0, holdout=3)
    h = rep.get("approach3").holdout
    p = h["params"]
    for q in h["points"]:
        hand = p["E"] + p["A"] / q["N"] ** p["alpha"] + p["B"] / q["D"] ** p["beta"]
        assert q["predicted"] == pytest.approx(hand, rel=1e-12)
    assert h["max_abs_rel_error"] < 1e-3  # noise-free data from the law extrapolate exactly


# ------------------------------------------------------------------ the registry
def test_every_method_is_declared_once_with_a_known_law_form():
    assert tuple(registry.REGISTRY) == ("kaplan_N", "kaplan_D", "kaplan_C", "kaplan_ND", "approach1", "approach2",
                                        "approach3", "data_constrained")
    for name, spec in registry.REGISTRY.items():
        assert spec.name == name and spec.law_form in laws.FORMS and spec.description
        assert spec.points in ("final", "all", "curves")
    assert registry.primary_order()[0] == "approach3"


def test_cli_method_help_lists_the_registry():
    # the CLI writes the registry's help out (no fitting import at start-up); adding a method must update it
    from scaling_planner.cli import FIT_METHODS_HELP
    from scaling_planner.fitting.registry import help_text

    assert FIT_METHODS_HELP == help_text()
