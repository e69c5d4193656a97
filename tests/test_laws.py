"""Published laws in fits/ against the papers' own numbers (sources cited per test)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling_planner.errors import ScalePlanError
from scaling_planner.io.law_file import catalogue_dir, law_names, list_laws, load_law
from scaling_planner.laws import ScalingLaw

# Hoffmann et al. 2022, Table 3 (Approach 1 projections): params, FLOPs, tokens.
TABLE3 = [(400e6, 1.92e19, 8.0e9), (1e9, 1.21e20, 20.2e9), (10e9, 1.23e22, 205.1e9), (67e9, 5.76e23, 1.5e12),
          (175e9, 3.85e24, 3.7e12), (280e9, 9.90e24, 5.9e12), (520e9, 3.43e25, 11.0e12), (1e12, 1.27e26, 21.2e12),
          (10e12, 1.30e28, 216.2e12)]
# Hoffmann et al. 2022, Table A3 (Approach 2 projections; as transcribed in karpathy/nanoGPT scaling_laws.ipynb).
TABLE_A3 = [(400e6, 7.7e9), (1e9, 20.0e9), (10e9, 219.5e9), (67e9, 1.7e12), (175e9, 4.3e12), (280e9, 7.1e12),
            (520e9, 13.4e12), (1e12, 26.5e12), (10e12, 292e12)]


def test_catalogue_has_required_laws():
    need = {"kaplan2020", "chinchilla-approach1", "chinchilla-approach2", "chinchilla-approach3",
            "chinchilla-approach3-unrounded", "epoch2024", "deepseek2024", "muennighoff2023"}
    assert need <= set(law_names())
    for law in list_laws():
        assert law.citation.get("paper") and law.citation.get("arxiv"), law.name
        assert law.conventions.get("N"), law.name


@pytest.mark.parametrize("N,C,D", TABLE3)
def test_approach1_reproduces_table3(N, C, D):
    Nopt, Dopt = load_law("chinchilla-approach1").optimal(C)
    assert Nopt == pytest.approx(N, rel=0.03)
    # The 67B row's 1.5T tokens is itself 4.7% off C = 6ND (rounding in the paper), hence the wider tolerance.
    assert Dopt == pytest.approx(D, rel=0.06 if N == 67e9 else 0.03)


@pytest.mark.parametrize("N,D", TABLE_A3)
def test_approach2_reproduces_table_a3(N, D):
    Nopt, Dopt = load_law("chinchilla-approach2").optimal(6 * N * D)
    assert Nopt == pytest.approx(N, rel=0.03)
    assert Dopt == pytest.approx(D, rel=0.03)


def test_approach_exponents_match_table2():
    # Hoffmann et al. 2022 Table 2: a = 0.50 / 0.49 (Approaches 1 / 2).
    assert load_law("chinchilla-approach1").exponents()["a"] == 0.50
    assert load_law("chinchilla-approach2").exponents() == {"a": 0.49, "b": 0.51}


def test_epoch2024_at_gopher_budget():
    # Besiroglu et al. 2024: ~72B params, ~18 tokens/param at 5.76e23 FLOPs (fitting.md §2.2 table: 72.2B, D/N 18.4).
    N, D = load_law("epoch2024").optimal(5.76e23)
    assert N == pytest.approx(72.2e9, rel=0.01)
    assert D / N == pytest.approx(18.4, rel=0.02)
    # and at 1e23: 29.4B params, 566B tokens (planning.md §2.1)
    N, D = load_law("epoch2024").optimal(1e23)
    assert N == pytest.approx(29.4e9, rel=0.01) and D == pytest.approx(566e9, rel=0.01)


def test_rounded_approach3_gives_too_many_tokens_per_param():
    # Eq. 4 arithmetic with Hoffmann's rounded Eq. 10 constants: D/N = 78 at 1e23, 92.6 at 5.76e23, 152.6 at 1e26;
    # unrounded: N_opt 40.4B at 5.76e23 (fitting.md §2.2 table, from Besiroglu et al. 2024).
    law = load_law("chinchilla-approach3")
    for C, ratio in ((1e23, 78), (5.76e23, 92.6), (1e26, 152.6)):
        N, D = law.optimal(C)
        assert D / N == pytest.approx(ratio, rel=0.01)
    assert any("WARNING" in n for n in law.notes)
    N, _ = load_law("chinchilla-approach3-unrounded").optimal(5.76e23)
    assert N == pytest.approx(40.4e9, rel=0.01)


def test_kaplan_table5_L_of_N():
    # Kaplan et al. 2020 Eq. 1.1 / Table 5: L(N) = (8.8e13/N)^0.076.
    assert load_law("kaplan2020").loss(1e9) == pytest.approx((8.8e13 / 1e9) ** 0.076, rel=1e-12)
    k = load_law("kaplan2020")
    assert k.component("L_D").loss(D=1e10) == pytest.approx((5.4e13 / 1e10) ** 0.095)
    # Table 2 joint law at finite D
    assert k.loss(1e9, 1e10) == pytest.approx(((6.4e13 / 1e9) ** (0.076 / 0.103) + 1.8e13 / 1e10) ** 0.103)
    # Table 6: N_opt = 1.3e9 * C_min^0.73 with C_min in PF-days
    N, D = k.optimal(8.64e19)
    assert N == pytest.approx(1.3e9) and D == pytest.approx(2e10)


def test_deepseek_allocation():
    # DeepSeek LLM Sec. 3.2: M_opt = 0.1715 C^0.5243 and D_opt = 5.8316 C^0.4757; at 1e23 M ≈ 2.0e11 (N = M/6 ≈ 33B),
    # D ≈ 0.51T (planning.md §2.3).
    N, D = load_law("deepseek2024").optimal(1e23)
    assert N * 6 == pytest.approx(0.1715 * 1e23 ** 0.5243)
    assert N == pytest.approx(33e9, rel=0.02) and D == pytest.approx(0.51e12, rel=0.01)


def test_muennighoff_repeated_data():
    # Muennighoff et al. 2023: R_D* = 15.39 -> 4 epochs of repeated data are worth almost as much as fresh data,
    # and the value of repetition saturates (D' -> U_D (1 + R_D*)).
    law = load_law("muennighoff2023")
    assert law.params["A"] == pytest.approx(np.exp(6.255414))
    U = 1e11
    _, D4 = law.effective(1e9, 4 * U, U)
    assert D4 / (4 * U) > 0.9
    _, Dinf = law.effective(1e9, 1000 * U, U)
    assert Dinf == pytest.approx(U * (1 + 15.387756), rel=1e-3)
    assert law.loss(1e9, 4 * U, unique_tokens=U) > law.loss(1e9, 4 * U)


def test_unknown_law_suggests_closest():
    with pytest.raises(ScalePlanError, match="Did you mean 'epoch2024'"):
        load_law("epoch2042")


def test_bad_law_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ScalePlanError, match="not valid JSON"):
        load_law(str(p))
    p.write_text(json.dumps({"name": "x", "form": "chinchilla", "params": {"E": 1}}))
    with pytest.raises(ScalePlanError, match="needs params.A, params.B, params.alpha, params.beta"):
        load_law(str(p))
    p.write_text(json.dumps({"name": "x", "form": "bogus", "params": {}}))
    with pytest.raises(ScalePlanError, match="unknown form"):
        load_law(str(p))


CHIN = {"E": 1.8, "A": 480.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}


@pytest.mark.parametrize("form,params,extra,match", [
    ("chinchilla", {**CHIN, "alpha": 0.0}, {}, r"params.alpha must be > 0, got 0"),
    ("chinchilla", {**CHIN, "beta": -0.3}, {}, r"params.beta must be > 0, got -0.3"),
    ("chinchilla", {**CHIN, "E": -1.0}, {}, r"params.E must be >= 0"),
    ("chinchilla", {**CHIN, "A": 0}, {}, r"params.A must be > 0"),
    ("chinchilla", {**CHIN, "B": "big"}, {}, r'params.B must be a number, got "big"'),
    ("chinchilla", {**CHIN, "B": True}, {}, r"params.B must be a number"),
    ("kaplan_joint", {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0}, {}, r"params.alpha_D must be > 0"),
    ("power", {"X_c": 8.8e13, "alpha": -0.076}, {"variable": "N"}, r"params.alpha must be > 0"),
    ("power", {"X_c": 8.8e13, "alpha": 0.076}, {"variable": "Q"}, r"needs field 'variable'"),
    ("allocation", {"k_N": 0.1, "a": 0.0, "b": 0.5}, {}, r"params.a must be > 0"),
    ("allocation", {"a": 0.5, "b": 0.5}, {}, r"needs params.k_N"),
    ("chinchilla", CHIN, {"C_unit": "exaflops"}, r"C_unit 'exaflops' is unknown"),
    ("chinchilla", CHIN, {"allocation": {"k_N": 1.0, "a": -0.5}}, r"allocation.a must be > 0"),
    ("chinchilla", CHIN, {"samples": {"alpha": [0.3, "x"]}}, r"samples.alpha must be a non-empty list"),
    ("chinchilla", CHIN, {"samples": {"alpha": [0.3], "beta": [0.3, 0.4]}}, r"same length"),
    ("chinchilla", CHIN, {"samples": {"gamma": [0.3]}}, r"samples.gamma is not one of the law's params"),
    ("chinchilla", CHIN, {"components": {"L_N": {"form": "power", "variable": "N",
                                                 "params": {"X_c": 1.0, "alpha": 0}}}},
     r"components.L_N.params.alpha must be > 0"),
])
def test_law_file_validation_names_the_field(tmp_path, form, params, extra, match):
    """Zero/negative exponents used to raise ZeroDivisionError deep inside optimal(); now the load names the field."""
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"name": "bad", "form": form, "params": params, **extra}))
    with pytest.raises(ScalePlanError, match=match) as ei:
        load_law(str(p))
    assert str(p) in str(ei.value) and "\n" not in str(ei.value)


def test_law_file_nonfinite_rejected(tmp_path):
    p = tmp_path / "nan.json"
    p.write_text('{"name": "x", "form": "chinchilla", "params": {"E": NaN, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}}')
    with pytest.raises(ScalePlanError, match="params.E must be a finite number"):
        load_law(str(p))


def test_catalogue_roundtrip_exact():
    for path in catalogue_dir().glob("*.json"):
        raw = json.loads(path.read_text())
        law = ScalingLaw.from_dict(raw)
        assert law.to_dict() == raw, path.name


finite = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
exps = st.floats(min_value=0.05, max_value=1.5, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(E=finite, A=finite, B=finite, alpha=exps, beta=exps, C=st.floats(min_value=1e15, max_value=1e28))
def test_chinchilla_roundtrip_and_optimality(E, A, B, alpha, beta, C):
    law = ScalingLaw(name="h", form="chinchilla", params={"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta})
    back = ScalingLaw.from_dict(json.loads(json.dumps(law.to_dict())))
    assert back == law
    N, D = law.optimal(C)
    assert 6 * N * D == pytest.approx(C, rel=1e-9)
    # the closed form is a minimum of loss along C = 6ND
    for f in (0.9, 1.1):
        assert law.loss(N * f, C / (6 * N * f)) >= law.loss(N, D) - 1e-12 * law.loss(N, D)


def test_kaplan_loss_of_compute_in_pf_days():
    # Kaplan et al. 2020 Eq. 1.3 / Table 5: L(C_min) = (3.1e8 / C_min)^0.050 with C_min in PF-days (8.64e19 FLOPs)
    lc = load_law("kaplan2020").component("L_Cmin")
    assert lc.loss_at_compute(8.64e19 * 1e3) == pytest.approx((3.1e8 / 1e3) ** 0.050)
