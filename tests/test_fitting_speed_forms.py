"""Approach 3 at speed and with tied exponents (docs/fitting.md §3.1): the variable-projection screen reaches the
4,500-start grid's optimum, the blocked objective is the plain one, the tied form (Gadre et al. 2024) reproduces their
over-training protocol, the typed CSV read gives the tables of the text read, and the faster shape search the shapes
of the plain one. No timings here: speed is shown by benchmarks/."""

import csv
import itertools
import json
import math
import re

import numpy as np
import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.fitting import approach3, common, fit, fit_method, objective
from scaling_planner.io import runlog
from scaling_planner.io.law_file import read_law
from scaling_planner.io.runlog import from_arrays, load_runs

from .conftest import EPOCH_CSV, ROOT

GADRE = ROOT / "tests" / "fixtures" / "gadre2024_overtrain" / "rpj_c4_val.csv"


@pytest.fixture(scope="module")
def epoch240():
    t = load_runs(EPOCH_CSV)
    return t.subset(np.sort(np.argsort(t.loss, kind="stable")[:-5]))  # Epoch dropped the 5 highest-loss points


# ------------------------------------------------------------------ the variable-projection screen
def test_varpro_screen_reaches_the_4500_start_optimum_on_epochs_points(epoch240):
    vp = fit_method("approach3", epoch240, bootstrap=0, screen="varpro")
    gr = fit_method("approach3", epoch240, bootstrap=0, screen="grid")
    # Besiroglu et al. 2024, cell 18: objective 0.0010182740 (summed Huber 1e-3, Hoffmann's grid)
    assert vp.objective == pytest.approx(0.0010182740, rel=1e-7)
    assert vp.objective == pytest.approx(gr.objective, rel=1e-9)
    for k in approach3.PARAMS:
        assert vp.params[k] == pytest.approx(gr.params[k], rel=2e-5), k
    assert vp.converged and gr.converged and not vp.warnings
    assert (vp.info["screen"], gr.info["screen"]) == ("varpro", "grid")
    assert gr.info["n_starts"] == 4500 and gr.info["n_starts_at_best"] > 100
    assert vp.info["n_starts"] == approach3.VARPRO_EXPONENTS.size ** 2
    assert vp.info["n_starts_at_best"] >= 2  # the best basin is reached from several screened pairs
    assert vp.info["n_starts_polished"] <= approach3.POLISH_BEST + approach3.POLISH_MINIMA


def test_varpro_projection_is_the_nonnegative_least_squares():
    """For fixed exponents, (E, A, B) are scipy's NNLS of the relative residuals (L_hat - L)/L, including pairs where
    a coefficient is held at 0."""
    from scipy.optimize import nnls

    rng = np.random.default_rng(4)
    N = np.exp(rng.uniform(np.log(3e7), np.log(1e10), 60))
    D = N * np.exp(rng.uniform(np.log(5), np.log(200), 60))
    L = (1.8 + 480 / N**0.34 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.01, 60))
    ex = np.array([0.05, 0.2, 0.34, 0.37, 0.9, 1.8])
    starts, shape = approach3.varpro_starts(np.log(N), np.log(D), np.log(L), ex)
    assert shape == (6, 6) and starts.shape == (36, 5)
    zeros = 0
    for row in starts:
        al, be = row[3], row[4]
        M = np.c_[np.ones_like(L), N**-al, D**-be] / L[:, None]
        scale = np.linalg.norm(M, axis=0)
        c, _ = nnls(M / scale, np.ones_like(L))
        want = c / scale
        got = np.exp(row[[2, 0, 1]])
        for w, g, lo in zip(want, got, (L.min(), L.min() * N.min() ** al, L.min() * D.min() ** be)):
            if w == 0:
                zeros += 1
                assert g == pytest.approx(1e-6 * lo, rel=1e-9)  # a dropped term starts at 1e-6 of the loss
            else:
                assert g == pytest.approx(w, rel=1e-6)
    assert zeros > 0  # some pairs need the constraint


def test_varpro_tied_screens_one_exponent():
    rng = np.random.default_rng(5)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 30))
    D = N * 20 * np.exp(rng.uniform(-2, 3, 30))
    starts, shape = approach3.varpro_starts(np.log(N), np.log(D), np.log(2.0 + 300 / N**0.3 + 900 / D**0.3),
                                            tied=True)
    assert shape == (approach3.VARPRO_EXPONENTS.size,)
    assert np.array_equal(starts[:, 3], starts[:, 4])


def test_polish_candidates_are_the_best_points_and_the_lowest_local_minima():
    f = np.array([[5.0, 4.0, 6.0, 9.0],
                  [4.5, 7.0, 8.0, 2.5],
                  [1.0, 6.0, 9.0, 2.0],
                  [0.5, 9.0, 9.0, 9.0]])
    idx = approach3.polish_candidates(f.ravel(), f.shape, best=2, minima=5)
    assert list(idx[:2]) == [12, 8]  # the two lowest objectives first
    assert set(idx) == {12, 8, 11, 1}  # + the local minima (0.5, 2.0 and 4.0; diagonals count as neighbours)


# ------------------------------------------------------------------ the blocked objective
def _reference_fg(theta, lnN, lnD, lnL, w, loss, delta=1e-3, asym=10.0):
    """Objective and gradient of approach3's log-space model written out directly (no blocks, no fusing)."""
    a, b, e, al = (theta[:, i:i + 1] for i in range(4))
    be = theta[:, 4:5] if theta.shape[1] == 5 else al
    t1, t2 = a - al * lnN, b - be * lnD
    s = np.exp(t1) + np.exp(t2) + np.exp(e)
    r = np.log(s) - lnL
    if loss == "mse":
        rho, psi = 0.5 * r**2, r
    else:
        small = np.abs(r) <= delta
        rho = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
        psi = np.where(small, r, delta * np.sign(r))
        if loss == "asymmetric":
            rho, psi = rho * np.where(r > 0, asym, 1), psi * np.where(r > 0, asym, 1)
    rho, psi = rho * w, psi * w
    dA, dB, dE = psi * np.exp(t1) / s, psi * np.exp(t2) / s, psi * np.exp(e) / s
    g = [dA.sum(1), dB.sum(1), dE.sum(1), -(dA * lnN).sum(1)]
    if theta.shape[1] == 5:
        g.append(-(dB * lnD).sum(1))
    else:
        g[3] = g[3] - (dB * lnD).sum(1)
    return rho.sum(1), np.stack(g, axis=1)


@pytest.mark.parametrize("n", [7, 240, objective.BLOCK_ELEMENTS + 123])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("loss", ["huber", "mse", "asymmetric"])
def test_blocked_objective_equals_the_plain_one(n, tied, loss):
    rng = np.random.default_rng(n)
    lnN, lnD = rng.uniform(16, 23, n), rng.uniform(18, 27, n)
    lnL = np.log(1.8 + np.exp(6.2 - 0.34 * lnN) + np.exp(7.6 - 0.37 * lnD)) + rng.normal(0, 0.01, n)
    k = 37
    theta = np.c_[rng.uniform(0, 10, k), rng.uniform(0, 10, k), rng.uniform(-1, 1, k), rng.uniform(0.05, 1, (k, 2))]
    if tied:
        theta = theta[:, :4]
    W = rng.integers(0, 3, (50, n)).astype(float)
    rows = rng.choice(50, k, replace=False)
    f, g = objective.chinchilla_fg(lnN, lnD, lnL, loss=loss, weights=W, tied=tied)(theta, rows)
    f1, g1 = objective.chinchilla_fg(lnN, lnD, lnL, loss=loss, weights=W, tied=tied, block=(k, n))(theta, rows)
    fr, gr = _reference_fg(theta, lnN, lnD, lnL, W[rows], loss)
    f0, g0 = objective.chinchilla_fg(lnN, lnD, lnL, loss=loss, weights=W, tied=tied, gradient=False)(theta, rows)
    np.testing.assert_allclose(f0, fr, rtol=1e-10)
    assert not g0.any()
    np.testing.assert_allclose(f, fr, rtol=1e-10)
    np.testing.assert_allclose(g, gr, rtol=1e-9, atol=1e-12 * np.abs(gr).max())
    np.testing.assert_allclose(f1, fr, rtol=1e-10)
    np.testing.assert_allclose(g1, gr, rtol=1e-9, atol=1e-12 * np.abs(gr).max())


def test_block_shape_bounds_every_temporary():
    for n in (1, 240, 5_999, 6_000, 6_001, 10_000, 100_000):
        rows, points = objective._block_shape(n)
        assert rows >= 1 and 1 <= points <= n
        assert rows * points <= objective.BLOCK_ELEMENTS


@pytest.mark.parametrize("n", [50, objective.BLOCK_ELEMENTS + 77])
def test_kaplan_objectives_blocked_equal_single_block(n, monkeypatch):
    rng = np.random.default_rng(1)
    lnN, lnD = rng.uniform(16, 23, n), rng.uniform(18, 27, n)
    lnL = 0.07 * (32 - lnN) + rng.normal(0, 0.01, n)
    th = np.c_[rng.uniform(25, 35, 9), rng.uniform(25, 35, 9), rng.uniform(0.05, 0.1, 9), rng.uniform(0.05, 0.1, 9)]
    W = rng.integers(0, 3, (9, n)).astype(float)
    rows = np.arange(9)
    f, g = objective.kaplan_joint_fg(lnN, lnD, lnL, weights=W)(th, rows)
    t3 = np.c_[rng.uniform(0, 1, 9), rng.uniform(0, 3, 9), rng.uniform(0.05, 0.3, 9)]
    f3, g3 = objective.make_fg(objective.offset_power_model, (lnN,), lnL, weights=W)(t3, rows)
    monkeypatch.setattr(objective, "_block_shape", lambda n, b=0: (100, n))  # one block
    f0, g0 = objective.kaplan_joint_fg(lnN, lnD, lnL, weights=W)(th, rows)
    f30, g30 = objective.make_fg(objective.offset_power_model, (lnN,), lnL, weights=W)(t3, rows)
    np.testing.assert_allclose(f, f0, rtol=1e-10)
    np.testing.assert_allclose(g, g0, rtol=1e-9, atol=1e-12 * np.abs(g0).max())
    np.testing.assert_allclose(f3, f30, rtol=1e-10)
    np.testing.assert_allclose(g3, g30, rtol=1e-9, atol=1e-12 * np.abs(g30).max())


def test_run_weights_are_the_dense_bootstrap_weights():
    runs = np.repeat(np.arange(40), 3).astype(str)
    dense = common.run_bootstrap_weights(runs, 25, np.random.default_rng(7))
    compact = common.run_bootstrap_counts(runs, 25, np.random.default_rng(7))
    assert compact.shape == dense.shape and compact.counts.dtype == np.uint8
    np.testing.assert_array_equal(compact[:, :], dense)
    np.testing.assert_array_equal(compact[np.array([3, 1]), 5:17], dense[[3, 1], 5:17])
    # the same draws as one (n_boot, n_runs) call of the generator
    draws = np.random.default_rng(7).integers(0, 40, size=(25, 40))
    assert all(np.array_equal(np.bincount(draws[r], minlength=40)[np.unique(runs, return_inverse=True)[1]], dense[r])
               for r in range(25))


# ------------------------------------------------------------------ tied exponents (Gadre et al. 2024)
def test_tied_exponents_recover_a_law_with_one_exponent():
    rng = np.random.default_rng(11)
    N, D = (np.array(v) for v in zip(*itertools.product(np.geomspace(3e7, 3e9, 6), np.geomspace(1e9, 1e11, 6))))
    L = (1.9 + 300 / N**0.3 + 900 / D**0.3) * np.exp(rng.normal(0, 0.002, N.size))
    t = from_arrays(N=N, D=D, loss=L)
    r = fit_method("approach3", t, bootstrap=50, tie_exponents=True)
    assert r.params["alpha"] == r.params["beta"] == pytest.approx(0.3, abs=0.02)
    assert r.params["E"] == pytest.approx(1.9, abs=0.05)
    assert r.derived["a"] == r.derived["b"] == pytest.approx(0.5)
    assert r.info["tied_exponents"] is True and r.converged
    assert r.ci95["alpha"] == r.ci95["beta"]
    np.testing.assert_array_equal(r.samples["alpha"], r.samples["beta"])
    grid = fit_method("approach3", t, bootstrap=0, tie_exponents=True, screen="grid")
    assert grid.info["n_starts"] == 900  # Hoffmann's grid with one exponent
    assert grid.objective == pytest.approx(r.objective, rel=1e-8)


def test_tied_gradient_is_the_sum_of_both_exponent_gradients():
    rng = np.random.default_rng(2)
    lnN, lnD = rng.uniform(16, 23, 30), rng.uniform(18, 27, 30)
    lnL = np.log(1.8 + np.exp(6 - 0.3 * lnN) + np.exp(7 - 0.3 * lnD))
    th4 = np.array([[6.1, 7.2, 0.5, 0.31]])
    f4, g4 = objective.chinchilla_fg(lnN, lnD, lnL, loss="mse", tied=True)(th4, None)
    f5, g5 = objective.chinchilla_fg(lnN, lnD, lnL, loss="mse")(approach3.full_theta(th4), None)
    assert f4[0] == pytest.approx(f5[0], rel=1e-14)
    np.testing.assert_allclose(g4[0], [*g5[0, :3], g5[0, 3] + g5[0, 4]], rtol=1e-12)


def test_tied_exponents_need_five_points_not_six():
    N = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9])
    D = np.array([2e9, 8e9, 4e9, 3e10, 2e10])
    L = 1.9 + 300 / N**0.3 + 900 / D**0.3
    r = fit_method("approach3", from_arrays(N=N, D=D, loss=L), bootstrap=0, tie_exponents=True)
    assert r.params["alpha"] == pytest.approx(0.3, abs=1e-3)
    with pytest.raises(ScalePlanError, match=r"needs at least 6 points \(5 parameters\), got 5"):
        fit_method("approach3", from_arrays(N=N, D=D, loss=L), bootstrap=0)
    with pytest.raises(ScalePlanError, match=r"needs at least 5 points \(4 parameters with tied exponents\), got 4"):
        fit_method("approach3", from_arrays(N=N[:4], D=D[:4], loss=L[:4]), bootstrap=0, tie_exponents=True)


def _gadre_protocol():
    """Gadre et al. 2024's loss fit (scaling/shared.py fit_ds): RedPajama runs of the four small shapes at M = 20
    tokens per parameter (chinchilla_multiplier 1) and the 11M shape at M = 320 (16); targets: the 1.4B run at
    M = 640 (32) and the 6.9B run at M = 20 (1). Loss: C4 validation."""
    t = load_runs(GADRE, {"loss": "loss_c4_val"})
    with open(GADRE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cfg = np.array([r["config"] for r in rows])
    mult = np.array([float(r["chinchilla_multiplier"]) for r in rows])
    small = np.isin(cfg, ["d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8"])
    train = (small & (mult == 1.0)) | ((cfg == "d=96_l=8_h=4") & (mult == 16.0))
    target = ((cfg == "open_lm_1b") & (mult == 32.0)) | ((cfg == "open_lm_7b") & (mult == 1.0))
    return t.subset(np.flatnonzero(train)), t.subset(np.flatnonzero(target))


def test_gadre_overtraining_protocol_predicts_the_large_runs():
    train, target = _gadre_protocol()
    assert len(train) == 5 and len(target) == 2
    r = fit_method("approach3", train, bootstrap=0, tie_exponents=True)
    assert r.converged and r.params["alpha"] == pytest.approx(0.267, abs=0.005)
    pred = np.asarray(r.to_law().loss(target.N, target.D))
    rel = np.abs(pred - target.loss) / target.loss
    # their notebook (least squares on the loss): 0.7103% (1.4B, M = 640) and 0.7320% (6.9B, M = 20); the Huber fit on
    # log loss: 0.40% and 0.42%
    order = np.argsort(target.N)
    np.testing.assert_allclose(rel[order], [0.00396, 0.00420], atol=3e-4)
    assert rel.max() < 0.0071
    grid = fit_method("approach3", train, bootstrap=0, tie_exponents=True, screen="grid")
    assert grid.objective == pytest.approx(r.objective, rel=1e-8)


def test_fit_cli_tie_exponents_saves_a_law_that_answers(cli, tmp_path):
    train, _ = _gadre_protocol()
    p = tmp_path / "gadre.csv"
    p.write_text("N,D,loss\n" + "".join(f"{float(n)!r},{float(d)!r},{float(v)!r}\n"
                                         for n, d, v in zip(train.N, train.D, train.loss)))
    save = tmp_path / "law.json"
    code, out, err = cli("fit", p, "--method", "approach3", "--tie-exponents", "--bootstrap", "20", "--save", save,
                         "--json")
    assert code == 0, err
    d = json.loads(out)
    a3 = d["fits"][0]
    assert a3["info"]["tied_exponents"] is True and a3["params"]["alpha"] == a3["params"]["beta"]
    assert d["options"]["tie_exponents"] is True and d["options"]["screen"] == "varpro"
    law = read_law(save)
    assert law.fit["info"]["tied_exponents"] is True and law.fit["options"]["tie_exponents"] is True
    assert law.loss(6.9e9, 1.378e11) == pytest.approx(2.4355, abs=0.01)
    N, D = law.optimal(1e23)
    assert 6 * N * D == pytest.approx(1e23, rel=1e-9)
    code, out, err = cli("fit", p, "--method", "approach3", "--screen", "grid", "--bootstrap", "0",
                         "--tie-exponents", "--json")
    assert code == 0 and json.loads(out)["fits"][0]["info"]["n_starts"] == 900
    code, out, err = cli("fit", p, "--method", "approach3", "--screen", "best")
    assert code == 2 and "--screen" in err and "varpro, grid" in err


# ------------------------------------------------------------------ the typed CSV read
TRICKY = ["1e8", "100000000", "1.3B", "350M", "1,000,000", "1_000", "1_0", "+5e8", ".5e9", "5.e8", " 2e9", "2e9 ",
          "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1e-400", "-0", "0", "-5", "True", "1,5e23", "١٢٣",
          "0x10", "", "  ", "1.2.3", "1e", "--1", "e5", ".", "-", "3.14159265358979323846264338327950288", "1E+08",
          "12345678901234567890123", "99999999999999999999", "1e0008"]


def test_plain_numbers_are_the_plain_grammar_parsed_by_float():
    cells = np.array(TRICKY + [None, float("nan"), 3.5, "x" * 60 + "1", "7" * 45, "1\x002", "\u20031"], dtype=object)
    out = np.full(len(cells), np.nan)
    missing = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in cells])
    got = runlog._plain_numbers(cells, missing, out)
    for i, v in enumerate(cells):
        plain = (isinstance(v, str) and len(v) <= runlog._PLAIN_MAX_LEN and re.fullmatch(runlog._PLAIN, v) is not None
                 and re.fullmatch(r"[0-9+\-.eE \t\n\r\f\v]*", v) is not None and math.isfinite(float(v)))
        assert got[i] == plain, repr(v)
        if plain:
            assert out[i] == float(v)
        else:
            assert np.isnan(out[i])


def _load_both(path, monkeypatch, **kw):
    """(typed read, text read): the table or the error message of each."""
    def one():
        try:
            t = load_runs(path, **kw)
        except ScalePlanError as e:
            return str(e)
        return ({k: getattr(t, k) for k in ("N", "D", "C", "loss", "run", "step", "budget")}, t.warnings, t.derived)

    typed = one()
    with monkeypatch.context() as m:
        m.setattr(runlog, "_read_csv_typed", lambda *a: None)
        text = one()
    return typed, text


def _same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    for k in a[0]:
        x, y = a[0][k], b[0][k]
        if (x is None) != (y is None):
            return False
        if x is not None and not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return a[1:] == b[1:]


def test_typed_csv_read_gives_the_text_reads_tables_and_errors(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    calls = []
    real = runlog._read_csv_typed
    monkeypatch.setattr(runlog, "_read_csv_typed", lambda *a: calls.append(1) or real(*a))
    good = ["1.3B", "350M", "1,000,000,000", "1_000_000_000", "+5e8", ".5e9", "5.e8", " 2e9", "2e9 ", "1E+08"]
    n_ok = 0
    for trial in range(60):
        lines = ["run,N,D,loss,step"]
        for i in range(int(rng.integers(6, 14))):
            u = rng.random()
            N = str(rng.choice(TRICKY)) if u < (0.01 if trial % 2 else 0.1) else str(rng.choice(good)) \
                if u < 0.3 else f"{rng.choice([1e8, 3e8, 1e9]):g}"
            D = str(rng.choice(good + [""])) if rng.random() < 0.2 else repr(float(rng.uniform(1e9, 1e11)))
            L = str(rng.choice(["3.0000000000000001", " 3.2", "", "+2.7", "nan", "0.9", "2,5"][:4 + trial % 4])) \
                if rng.random() < 0.15 else repr(float(rng.uniform(2, 4)))
            run = str(rng.choice(["a", "b"])) if rng.random() < 0.3 else f"r{i}"
            lines.append(",".join(f'"{c}"' if "," in c else c for c in (run, N, D, L, str(i))))
        p = tmp_path / f"t{trial}.csv"
        p.write_text("\n".join(lines) + "\n")
        for kw in ({}, {"columns": {"run": "run"}}, {"loss_unit": "ppl"}, {"log10": ("N",)}):
            typed, text = _load_both(p, monkeypatch, **kw)
            assert _same(typed, text), (p.read_text(), kw, typed, text)
            n_ok += not isinstance(typed, str)
    assert n_ok >= 30 and calls  # many files load (the rest are errors, compared too); the typed read was tried


@pytest.mark.parametrize("text,kw", [
    ("run,N,D,loss\na,1e8,2e9,3.1\nb,2e8,4e9,-2.9\n", {}),  # a cell quoted in the message
    ("run,N,D,loss\na,1e8,2e9,3.1\nb,2e8,4e9,0.9\n", {"loss_unit": "ppl"}),
    ("run,N,D,loss\na,8,2e9,3.1\nb,200,9.3,2.9\n", {"log10": ("N",)}),
    ("run,N,D,loss\na,1e8,2e9,3.1\n\n\nb,2e8,inf,2.9\n", {}),  # a line number after blank lines
    ("\ufeffrun,N,D,loss\r\na,1e8,2e9,3.1\r\nb,2e8,4e9,2.9\r\nb,2e8,4e9,2.9\r\n", {}),  # BOM, CRLF, a duplicate
    ('run,N,D,loss\n"a\nb",1e8,2e9,3.1\nc,2e8,4e9,0\n', {}),  # a quoted newline
    ("run,N,D,loss,loss\na,1e8,2e9,3.1,3.2\nb,2e8,4e9,2.9,3\n", {}),  # repeated names
    ("run,N,D,loss\na,99999999999999999999,2e9,3.1\nb,18446744073709551617,4e9,2.9\nc,3e8,5e9,2.8\n", {}),
    ("run,N,D,loss\na,True,2e9,3.1\nb,2e8,4e9,2.9\n", {}),
    ("N,budget,loss\n1e8,1e19,3.1\n2e8,1e19,2.9\n3e8,1e19,3.0\n", {}),
])
def test_typed_csv_read_on_edge_files(tmp_path, monkeypatch, text, kw):
    p = tmp_path / "runs.csv"
    p.write_bytes(text.encode("utf-8"))
    typed, plain = _load_both(p, monkeypatch, **kw)
    assert _same(typed, plain), (typed, plain)


def test_typed_csv_read_parses_number_columns_in_c(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("run,N,D,loss,note\na,1e8,2e9,3.1,x\nb,2e8,4e9,2.9,1.5\n")
    frame, lines, header = runlog._read_frame(p, {})
    assert frame["N"].dtype.kind == "f" and frame["loss"].dtype.kind == "f"
    assert not frame["note"].dtype.kind == "f" and list(frame["note"]) == ["x", "1.5"]  # other columns stay text
    assert header == ["run", "N", "D", "loss", "note"] and int(lines[1]) == 3


# ------------------------------------------------------------------ shape_for_params
def _shape_for_params_reference(n_params, vocab=32000, *, tp=1, pp=1, tied=False):
    """The search written out: every candidate shape built and counted by ModelShape."""
    from scaling_planner.model import ModelShape

    best = None
    for d in range(256, 65537, 128):
        heads = d // 128
        if heads % tp:
            continue
        kv = 8 if heads >= 32 and heads % 8 == 0 else heads
        if kv % tp and heads % tp == 0 and kv < tp:
            kv = tp
        base = max(1, round(d / 128))
        for L in range(max(1, base // 2), base * 2 + 1):
            if L % pp:
                continue
            s = ModelShape(vocab=vocab, d_model=d, n_layers=L, n_heads=heads, n_kv_heads=kv, tied_embeddings=tied)
            err = abs(math.log(s.params_total / n_params)) + 0.02 * abs(math.log(d / (128 * L)))
            if best is None or err < best[0]:
                best = (err, s)
        if best and best[1].params_total > 4 * n_params and d > 1024:
            break
    return best[1]


@pytest.mark.parametrize("n_params,tp,pp,tied,vocab", [
    (1.2e8, 1, 1, False, 32000), (1e9, 2, 1, True, 128256), (7e9, 8, 4, False, 32000), (7e10, 8, 1, False, 128256),
    (4e11, 16, 4, False, 32000), (3.3e8, 1, 4, True, 50257)])
def test_shape_for_params_is_the_full_search(n_params, tp, pp, tied, vocab):
    from scaling_planner.model import shape_for_params

    got = shape_for_params(n_params, vocab, tp=tp, pp=pp, tied=tied)
    want = _shape_for_params_reference(n_params, vocab, tp=tp, pp=pp, tied=tied)
    keys = ("d_model", "n_layers", "n_heads", "n_kv_heads", "ffn", "params_total")
    assert {k: getattr(got, k) for k in keys} == {k: getattr(want, k) for k in keys}


def test_fit_refuses_an_unknown_screen():
    t = from_arrays(N=[1e8, 2e8, 4e8, 8e8, 1.6e9, 3e9], D=[2e9, 8e9, 4e9, 3e10, 2e10, 6e10],
                    loss=[3.5, 3.1, 3.2, 2.8, 2.85, 2.6])
    with pytest.raises(ScalePlanError, match="screen must be one of varpro, grid") as e:
        fit(t, ["approach2"], bootstrap=0, screen="best")
    assert e.value.param == "screen"
