"""Trust on a fresh install: Approach 1 with continuous sizes, degenerate data (flat, rising, noise-only), one budget
for every method, option checks, bootstrap progress, and no complex or non-finite number reported as a value."""

import io
import json

import numpy as np
import pytest
from rich.console import Console

from scaling_planner.errors import ScalePlanError
from scaling_planner.fitting import METHODS, fit, fit_method
from scaling_planner.fitting.common import ReplicateProgress
from scaling_planner.fitting.result import FitResult, _clean
from scaling_planner.io.runlog import from_arrays, load_runs
from scaling_planner.render.terminal import fit_view

from .conftest import EXAMPLES

E, A, B, ALPHA, BETA = 1.8172, 482.01, 2085.43, 0.3478, 0.3658  # Epoch's law (fits/epoch2024.json)
A_TRUE = BETA / (ALPHA + BETA)  # 0.5126


def epoch_loss(N, D):
    return E + A / N**ALPHA + B / D**BETA


def continuous_size_log(seed=0, noise=0.0, n_runs=200, points=30):
    """Learning curves of ``n_runs`` models with continuous (log-uniform) sizes 2e7-2e9, each trained to its own
    horizon (20-400 tokens/param), checkpoints from 1% of the horizon to the end: each run covers its own compute
    range. Loss from Epoch's law, optionally with multiplicative noise."""
    rng = np.random.default_rng(seed)
    run, N, D, L = [], [], [], []
    for i, n in enumerate(np.exp(rng.uniform(np.log(2e7), np.log(2e9), n_runs))):
        horizon = n * np.exp(rng.uniform(np.log(20), np.log(400)))
        d = np.geomspace(horizon / 100, horizon, points)
        run += [f"r{i}"] * points
        N += [n] * points
        D += list(d)
        L += list(epoch_loss(n, d) * np.exp(rng.normal(0, noise, points)))
    return from_arrays(run=np.array(run), N=np.array(N), D=np.array(D), loss=np.array(L))


def isoflop_table(budgets=(1e18, 1e19, 1e20, 1e21), n_opt=lambda C: 1e9 * (C / 1e19) ** 0.5, sizes=9, k=0.05,
                  noise=0.0, seed=0, flat_budgets=()):
    """Parabolic IsoFLOP profiles loss = L0(C) + k·(ln N - ln N*(C))²; budgets in ``flat_budgets`` get a constant
    loss plus noise (no minimum)."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        for f in np.geomspace(1 / 8, 8, sizes):
            N = n_opt(C) * f
            L = 3.0 - 0.1 * np.log10(C / 1e18) + k * np.log(f) ** 2
            if C in flat_budgets:
                L = 2.5
            rows.append((N, C / (6 * N), C, L * np.exp(rng.normal(0, noise))))
    N, D, C, L = map(np.array, zip(*rows))
    return from_arrays(N=N, D=D, budget=C, loss=L)


def rising_table():
    """IsoFLOP-style grid with learning curves where loss RISES with N (and falls with D)."""
    rows = []
    for C in np.geomspace(1e18, 1e21, 5):
        for N in np.geomspace(1e7, 1e8, 5) * (C / 1e18) ** 0.5:
            end = C / (6 * N)
            for D in np.geomspace(end / 8, end, 6):
                rows.append((f"{C:.2g}-{N:.3g}", N, D, 2.5 + 0.05 * np.log(N / 1e7) - 0.02 * np.log(D / 1e9)))
    run, N, D, L = map(np.array, zip(*rows))
    return from_arrays(run=run, N=N, D=D, loss=L)


def noisy_flat_table(seed=1):
    t = rising_table()
    rng = np.random.default_rng(seed)
    return from_arrays(run=t.run, N=t.N, D=t.D, loss=3.0 * np.exp(rng.normal(0, 0.002, len(t))))


def strict_json(obj) -> dict:
    """Round-trip through JSON that rejects NaN/Infinity (as any strict parser would)."""
    return json.loads(json.dumps(obj, allow_nan=False))


def view_text(rep) -> str:
    con = Console(file=io.StringIO(), width=200, color_system=None)
    con.print(fit_view(rep))
    return con.file.getvalue()


# ------------------------------------------------------------------ 1. Approach 1 with continuous sizes
@pytest.mark.parametrize("seed,noise", [(0, 0.0), (1, 0.0), (2, 0.001), (3, 0.001)])
def test_approach1_recovers_exponent_with_continuous_sizes(seed, noise):
    # 200 distinct sizes, each run covering its own compute range: the old rule (drop only budgets won by the single
    # smallest/largest model of the sweep) gave a = 0.36-0.44 here; the true a is 0.513.
    r = fit_method("approach1", continuous_size_log(seed, noise), bootstrap=0)
    assert r.params["a"] == pytest.approx(A_TRUE, abs=0.02)
    assert r.params["a"] + r.params["b"] == pytest.approx(1.0, abs=1e-9)
    assert r.converged
    # edge winners of the covering set were dropped, and say so
    assert r.info["unbracketed_grid_points"] > 0
    assert r.info["envelope_points"] + r.info["unbracketed_grid_points"] <= r.info["grid_points"]
    assert len(r.info["sizes_on_envelope"]) > 20


def test_approach1_bootstrap_interval_covers_truth_with_continuous_sizes():
    r = fit_method("approach1", continuous_size_log(4, 0.001), bootstrap=100)
    lo, hi = r.ci95["a"]
    assert lo < A_TRUE < hi and hi - lo < 0.1


def test_approach1_noise_margin_is_estimated_from_the_curves():
    quiet = fit_method("approach1", continuous_size_log(0, 0.0), bootstrap=0)
    noisy = fit_method("approach1", continuous_size_log(0, 0.003), bootstrap=0)
    assert noisy.info["curve_noise_log_loss"] == pytest.approx(0.003, rel=0.25)
    assert quiet.info["curve_noise_log_loss"] < 0.001
    assert noisy.info["bracket_margin_log_loss"] == pytest.approx(3 * noisy.info["curve_noise_log_loss"])
    assert noisy.params["a"] == pytest.approx(A_TRUE, abs=0.03)


def test_approach1_refuses_when_no_optimum_is_bracketed():
    # loss rises with N: the smallest covering model wins everywhere
    with pytest.raises(ScalePlanError, match="approach1: the optimum is bracketed at too few compute values"):
        fit_method("approach1", rising_table(), bootstrap=0)


def test_approach1_misfitting_example_still_fits():
    t = load_runs(EXAMPLES / "misfitting_li2025" / "learning_curves.csv", {"run": "model+peak_lr+total_steps"})
    r = fit_method("approach1", t, bootstrap=50)
    assert r.converged and 0.3 < r.params["a"] < 0.5  # 0.398 with the old rule, 0.400 now


# ------------------------------------------------------------------ 2. degenerate data
def test_flat_loss_is_an_error_for_every_method():
    t = rising_table()
    flat = from_arrays(run=t.run, N=t.N, D=t.D, loss=np.full(len(t), 3.0))
    with pytest.raises(ScalePlanError, match="^loss is flat across the data: every loss is 3 "):
        fit(flat, bootstrap=0)
    for m in METHODS:
        with pytest.raises(ScalePlanError, match=f"{m}: loss is flat across the data"):
            fit_method(m, flat if m == "approach1" else flat.final() if m != "kaplan_C" else flat, bootstrap=0)


def test_approach2_budget_with_noise_only_curvature_gives_no_vertex():
    t = isoflop_table(budgets=(1e18, 1e19, 1e20, 1e21, 1e22), flat_budgets=(1e20,), noise=0.002, seed=3)
    r = fit_method("approach2", t, bootstrap=0)
    skipped = {round(s["budget"]): s["reason"] for s in r.info["skipped_budgets"]}
    assert set(skipped) == {round(1e20)}
    assert "within the noise" in skipped[round(1e20)] or "opens downward" in skipped[round(1e20)]
    assert len(r.info["vertices"]) == 4
    assert all(v["curvature_t"] > 3 for v in r.info["vertices"])
    assert r.params["a"] == pytest.approx(0.5, abs=0.02)
    assert any("budget 1e+20 FLOPs not used" in w for w in r.warnings)


@pytest.mark.parametrize("seed", range(4))
def test_approach2_refuses_flat_noisy_parabolas(seed):
    # every budget is constant + noise: the old code fitted vertices to noise (e.g. "N_opt ∝ C^0.61, r² 0.92")
    t = isoflop_table(flat_budgets=(1e18, 1e19, 1e20, 1e21), noise=0.002, seed=seed)
    with pytest.raises(ScalePlanError, match="interior IsoFLOP minimum") as e:
        fit_method("approach2", t, bootstrap=0)
    assert "within the noise" in str(e.value) or "opens downward" in str(e.value)


def test_approach2_exactly_flat_budget_is_named():
    t = isoflop_table(budgets=(1e18, 1e19, 1e20), flat_budgets=(1e19,))
    r = fit_method("approach2", t, bootstrap=0)
    reason = r.info["skipped_budgets"][0]["reason"]
    assert reason.startswith("no minimum: the loss is flat across its sizes")


def test_approach2_shrinking_optimum_is_not_converged():
    t = isoflop_table(n_opt=lambda C: 1e9 * (C / 1e19) ** -0.3)
    r = fit_method("approach2", t, bootstrap=0)
    assert r.params["a"] == pytest.approx(-0.3, abs=1e-6)
    assert not r.converged
    assert r.warnings[0] == ("the compute-optimal model size does not grow with compute: the fitted exponent a "
                             "(N_opt ∝ C^a) is -0.3")


def test_rising_loss_every_method_is_refused_or_not_converged():
    rep = fit(rising_table(), bootstrap=20)
    d = strict_json(rep.to_dict())
    assert "kaplan_N" in rep.skipped and "loss does not fall with N" in rep.skipped["kaplan_N"]
    a3 = rep.get("approach3")
    assert not a3.converged
    assert a3.warnings[0].startswith("loss does not fall with N: the fitted exponent alpha is -")
    assert all(np.isnan(a3.derived[k]) for k in ("a", "N_opt", "D_opt", "tokens_per_param", "loss_opt"))
    a3j = next(f for f in d["fits"] if f["method"] == "approach3")
    assert a3j["converged"] is False and a3j["derived"]["N_opt"] is None and a3j["derived"]["a"] is None
    nd = rep.get("kaplan_ND")
    assert not nd.converged
    assert nd.warnings[0].startswith("loss does not fall with N: the fitted exponent alpha_N is -")
    for f in rep.fits:
        assert f.converged == (f.method == "kaplan_C"), f.method  # kaplan_C: the frontier does fall with compute
    # no method reports a confident allocation from these data
    assert not [f for f in rep.fits if f.converged and "N_opt" in f.derived]


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_only_loss_gives_no_converged_fit(seed):
    rep = fit(noisy_flat_table(seed), bootstrap=0)
    assert not [f.method for f in rep.fits if f.converged]
    strict_json(rep.to_dict())
    for f in rep.fits:
        assert f.warnings
        assert any(s in f.warnings[0] for s in ("does not fall with", "does not measurably fall with",
                                                 "not a finite number")), f.warnings
    for m in ("approach1", "approach2"):
        assert m in rep.skipped


def test_kaplan_single_with_exponent_in_the_noise_is_not_converged():
    t = noisy_flat_table(1)
    r = fit_method("kaplan_D", t.final(), bootstrap=50)
    assert not r.converged
    assert r.warnings[0].startswith("loss does not measurably fall with D: the fitted exponent alpha_D = ")
    assert "standard errors above zero, within the noise" in r.warnings[0]
    assert any("D_c is not a finite number (inf): the loss barely changes with D" in w for w in r.warnings)
    assert r.to_dict()["params"]["D_c"] is None


def test_kaplan_single_rising_is_an_error():
    with pytest.raises(ScalePlanError, match=r"kaplan_N: loss does not fall with N on the selected points"):
        fit_method("kaplan_N", rising_table().final(), bootstrap=0)


def test_kaplan_offset_with_no_trend_is_not_converged():
    t = noisy_flat_table(0).final()
    try:
        r = fit_method("kaplan_D", t, offset=True, bootstrap=0)
    except ScalePlanError as e:  # a negative exponent is refused outright
        assert "loss does not fall with D" in str(e)
        return
    assert not r.converged and r.warnings


def test_llama3_kaplan_joint_is_flagged():
    # real data: the joint Kaplan form runs alpha_D to ~0 and D_c to infinity; it used to say "converged yes"
    r = fit_method("kaplan_ND", load_runs(EXAMPLES / "llama3_isoflops" / "isoflops_points.csv"), bootstrap=0)
    assert not r.converged
    assert any(w.startswith("loss does not fall with D: the fitted exponent alpha_D is") for w in r.warnings)
    d = strict_json(r.to_dict())
    assert d["params"]["D_c"] is None and d["derived"]["a"] is None


def test_sound_fits_stay_converged_without_new_warnings():
    rep = fit(load_runs(EXAMPLES / "chinchilla_isoflops" / "isoflops.csv"), bootstrap=0)
    assert all(f.converged for f in rep.fits)
    for f in rep.fits:
        assert not [w for w in f.warnings if "does not" in w or "not a finite" in w]


# ------------------------------------------------------------------ no complex / non-finite numbers as values
def test_results_never_carry_complex_numbers():
    r = FitResult(method="approach3", params={"alpha": -0.1, "E": 1.0}, n_points=3,
                  derived={"G": complex(1, 2), "a": 0.5}, ci95={"G": [complex(0, 1), 1.0]})
    assert not r.converged
    assert np.isnan(r.derived["G"]) and r.derived["a"] == 0.5 and np.isnan(r.ci95["G"][0])
    assert "complex" in r.warnings[-1]
    assert _clean({"x": complex(1, 1), "y": np.complex128(1), "z": float("inf")}) == {"x": None, "y": None,
                                                                                        "z": None}
    strict_json(r.to_dict())


def test_rising_data_report_builds_without_complex_numbers(tmp_path):
    from scaling_planner.render.report.document import render_html
    from scaling_planner.render.report.fit import fit_content

    rep = fit(rising_table(), bootstrap=20)
    for f in rep.fits:
        for v in list(f.params.values()) + list(f.derived.values()):
            assert not isinstance(v, complex)
    content = fit_content(rep)
    html = render_html(content)
    assert "approach3: no figure, because the fit is not usable" in html
    assert "not usable (converged: no)" in " ".join(str(k) for k, _ in content.summary)


def test_view_never_prints_non_finite_numbers_as_values():
    rep = fit(noisy_flat_table(1), ["kaplan_N", "kaplan_D", "kaplan_ND"], bootstrap=20)
    text = view_text(rep)
    assert "converged NO" in text
    for bad in (" nan ", " inf ", "nan]", "[nan", "inf]"):
        assert bad not in text, bad
    assert "— (infinite)" in text  # D_c / N_c overflow is shown as such


# ------------------------------------------------------------------ 3. one budget for every method
def test_every_method_reports_at_one_budget():
    t = load_runs(EXAMPLES / "epoch_chinchilla" / "chinchilla_points.csv")
    rep = fit(t, ["approach2", "approach3"], bootstrap=0)
    assert rep.at_flops == pytest.approx(t.C.max()) and rep.at_flops_source == "largest compute in the data"
    ats = {f.method: f.derived["at_flops"] for f in rep.fits}
    assert ats == {"approach2": rep.at_flops, "approach3": rep.at_flops}
    # the IsoFLOP vertices stop well below the largest compute: approach2 used to report there (a 3x "disagreement")
    a2 = rep.get("approach2")
    assert max(v["budget"] for v in a2.info["vertices"]) < rep.at_flops / 3
    assert a2.derived["N_opt"] == pytest.approx(rep.get("approach3").derived["N_opt"], rel=0.35)
    d = rep.to_dict()
    assert d["at_flops"] == pytest.approx(t.C.max()) and d["at_flops_source"] == "largest compute in the data"
    assert {"input", "fits", "skipped", "options"} <= set(d) and d["options"]["at_flops"] is None
    text = view_text(rep)
    assert f"N_opt, D_opt and loss at C = {t.C.max():.3g} FLOPs (largest compute in the data; change with " \
           "--at-flops)" in text
    assert "derived N_opt/D_opt/loss at" not in text  # no per-table budgets that could differ


def test_at_flops_option_applies_to_every_method():
    t = isoflop_table()
    rep = fit(t, ["approach2", "approach3"], bootstrap=0, at_flops=1e23)
    assert rep.at_flops == 1e23 and rep.at_flops_source == "--at-flops"
    assert {f.derived["at_flops"] for f in rep.fits} == {1e23}
    assert "N_opt, D_opt and loss at C = 1e+23 FLOPs (set with --at-flops)" in view_text(rep)
    # approach2 alone also defaults to the largest compute, not its largest vertex
    r = fit_method("approach2", isoflop_table(budgets=(1e18, 1e19, 1e20)), bootstrap=0)
    assert r.derived["at_flops"] == pytest.approx(1e20)


def test_report_header_names_the_budget():
    from scaling_planner.render.report.fit import fit_content

    rep = fit(isoflop_table(), ["approach2"], bootstrap=0)
    summary = dict(fit_content(rep).summary)
    assert summary["N_opt, D_opt and loss at"].startswith("C = 1e+21 FLOPs (largest compute in the data; change "
                                                          "with --at-flops)")


def test_cli_json_has_top_level_at_flops(cli):
    code, out, err = cli("fit", EXAMPLES / "chinchilla_isoflops" / "isoflops.csv", "--method", "approach2",
                         "--bootstrap", "0", "--json", "--at-flops", "5.76e23")
    assert code == 0, err
    d = json.loads(out)
    assert d["at_flops"] == 5.76e23 and d["fits"][0]["derived"]["at_flops"] == 5.76e23


# ------------------------------------------------------------------ 4. option checks
@pytest.mark.parametrize("kw,message,flag", [
    ({"drop_top_loss": -3}, "drop_top_loss must be >= 0, got -3", "--drop-top-loss must be >= 0, got -3"),
    ({"bootstrap": -1}, "bootstrap must be >= 0", "--bootstrap must be >= 0"),
    ({"holdout": -1}, "holdout must be >= 0", "--holdout must be >= 0"),
    ({"seed": -5}, "seed must be >= 0", "--seed must be >= 0"),
    ({"budget_tol": 0.0}, "budget_tol must be a fraction between 0 and 1", "--budget-tol must be a fraction"),
    ({"budget_tol": 1.0}, "budget_tol must be a fraction between 0 and 1", "--budget-tol must be a fraction"),
    ({"budget_tol": float("nan")}, "budget_tol must be a fraction between 0 and 1", "--budget-tol must be a fraction"),
    ({"asymmetry": 0.0}, "asymmetry must be a positive number", "--asymmetry must be a positive number"),
    ({"asymmetry": -2.0, "loss": "asymmetric"}, "asymmetry must be a positive number", "--asymmetry must be a"),
    ({"delta": float("inf")}, "delta must be a positive number", "--huber-delta must be a positive number"),
    ({"at_flops": -1e20}, "at_flops must be a positive number", "--at-flops must be a positive number"),
    ({"bootstrap": 2.5}, "bootstrap must be a whole number", "--bootstrap must be a whole number"),
])
def test_bad_numeric_options_are_rejected(kw, message, flag):
    """The library names the keyword argument; the CLI shows the same message with its flag (errors.py)."""
    from scaling_planner.cli import FLAGS

    t = isoflop_table()
    with pytest.raises(ScalePlanError, match="^" + message.replace("(", r"\(")) as e:
        fit(t, ["approach2"], **kw)
    assert "--" not in str(e.value) and e.value.param in kw
    assert e.value.for_cli(FLAGS).startswith(flag)


def test_cli_rejects_negative_drop_top_loss(cli):
    code, out, err = cli("fit", EXAMPLES / "chinchilla_isoflops" / "isoflops.csv", "--drop-top-loss", "-3")
    assert code == 2 and "--drop-top-loss must be >= 0, got -3" in err and "Traceback" not in err


# ------------------------------------------------------------------ 5. progress
def test_progress_reports_fraction_of_replicates_throttled():
    calls = []
    fit(continuous_size_log(0), ["approach1", "kaplan_N"], bootstrap=1000,
        progress=lambda m, done, total: calls.append((m, done, total)))
    for m in ("approach1", "kaplan_N"):
        mine = [(d, n) for mm, d, n in calls if mm == m]
        assert mine[0] == (0, 1000) and mine[-1] == (1000, 1000)
        done = [d for d, _ in mine]
        assert done == sorted(done) and len(mine) <= 52
    assert len([c for c in calls if c[0] == "approach1"]) >= 20  # a real fraction, not just start and end


def test_progress_of_batched_bootstrap_replicates():
    calls = []
    fit(isoflop_table(noise=0.003), ["kaplan_ND"], bootstrap=300,
        progress=lambda m, done, total: calls.append((m, done, total)))
    done = [d for _, d, _ in calls]
    assert done[0] == 0 and done[-1] == 300 and done == sorted(done) and 3 <= len(done) <= 52


def test_old_one_argument_progress_callback_still_works():
    names = []
    fit(isoflop_table(), ["approach2", "kaplan_ND"], bootstrap=10, progress=names.append)
    assert names == ["approach2", "kaplan_ND"]


def test_replicate_progress_throttles():
    calls = []
    tick = ReplicateProgress(lambda *a: calls.append(a), "x", 10_000, max_updates=50)
    for i in range(1, 10_001):
        tick(i)
    assert len(calls) == 50 and calls[-1] == ("x", 10_000, 10_000)
    calls.clear()
    tick = ReplicateProgress(lambda *a: calls.append(a), "x", 7)
    tick(7)
    tick(7)
    assert calls == [("x", 7, 7)]


def test_cli_fit_with_progress_bar_runs(cli):
    code, out, err = cli("fit", EXAMPLES / "chinchilla_isoflops" / "isoflops.csv", "--method", "approach2",
                         "--bootstrap", "20")
    assert code == 0, err
    assert "N_opt, D_opt and loss at C = 1e+21 FLOPs" in out
