import json

import numpy as np
import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.runs import ALIASES, from_arrays, load_runs
from scaling_planner.units import PF_DAY

from .conftest import EPOCH_CSV, EXAMPLES


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("role", ["N", "D", "loss"])
def test_every_alias_maps(tmp_path, role):
    base = {"N": "params", "D": "tokens", "loss": "loss"}
    for alias in ALIASES[role]:
        cols = dict(base)
        cols[role] = alias
        header = ",".join(cols.values())
        p = write(tmp_path, "r.csv", f"{header}\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
        t = load_runs(p)
        assert t.columns[role] == alias
        np.testing.assert_allclose(t.N, [1e8, 2e8])
        np.testing.assert_allclose(t.D, [2e9, 4e9])
        np.testing.assert_allclose(t.loss, [3.1, 2.9])


@pytest.mark.parametrize("alias", ALIASES["C"])
def test_compute_aliases_and_derived_tokens(tmp_path, alias):
    p = write(tmp_path, "r.csv", f"params,{alias},loss\n1e8,1.2e18,3.1\n")
    t = load_runs(p)
    assert t.D[0] == pytest.approx(1.2e18 / 6e8)
    assert any("D = C/(6·N)" in d for d in t.derived)


@pytest.mark.parametrize("role", ["run", "step", "budget"])
def test_other_aliases(tmp_path, role):
    for alias in ALIASES[role]:
        p = write(tmp_path, "r.csv", f"params,tokens,loss,{alias}\n1e8,2e9,3.1,7\n")
        t = load_runs(p)
        assert t.columns[role] == alias


def test_aliases_ignore_case_spaces_underscores(tmp_path):
    p = write(tmp_path, "r.csv", "Num Params,TRAINING-TOKENS,Val_Loss\n1e8,2e9,3.1\n")
    t = load_runs(p)
    assert t.columns == {"N": "Num Params", "D": "TRAINING-TOKENS", "loss": "Val_Loss"}


def test_unit_suffixes_in_cells(tmp_path):
    p = write(tmp_path, "r.csv", 'params,tokens,loss\n1.3B,2.5T,2.1\n350M,"1,000,000",3.0\n')
    t = load_runs(p)
    np.testing.assert_allclose(t.N, [1.3e9, 350e6])
    np.testing.assert_allclose(t.D, [2.5e12, 1e6])


def test_derive_C_and_N(tmp_path):
    t = load_runs(write(tmp_path, "a.csv", "params,tokens,loss\n1e9,2e10,2.5\n"))
    assert t.C[0] == pytest.approx(6 * 1e9 * 2e10)
    assert any("C = 6·N·D" in d for d in t.derived)
    t = load_runs(write(tmp_path, "b.csv", "tokens,flops,loss\n2e10,1.2e20,2.5\n"))
    assert t.N[0] == pytest.approx(1e9)
    assert any("N = C/(6·D)" in d for d in t.derived)


def test_no_integer_overflow_on_large_products(tmp_path):
    # N*D = 1.6e10 * 3e11 = 4.8e21 > int64 max 9.2e18 (fitting.md §4.12)
    t = load_runs(write(tmp_path, "r.csv", "params,tokens,loss\n16000000000,300000000000,2.0\n"))
    assert t.C[0] == pytest.approx(6 * 1.6e10 * 3e11)


def test_pf_days(tmp_path):
    t = load_runs(write(tmp_path, "r.csv", "params,compute,loss\n1e9,1.0,2.5\n"), flops_unit="pf-days")
    assert t.C[0] == pytest.approx(PF_DAY)


def test_col_override_and_run_join(tmp_path):
    p = write(tmp_path, "r.csv", "m,lr,n,d,mine\na,1,1e8,1e9,3\na,2,1e8,1e9,2.9\n")
    t = load_runs(p, {"loss": "mine", "run": "m+lr"})
    assert list(t.run) == ["a|1", "a|2"]
    np.testing.assert_allclose(t.loss, [3, 2.9])


def test_formats_agree(tmp_path):
    rows = [{"params": 1e8, "tokens": 2e9, "loss": 3.1}, {"params": 2e8, "tokens": 4e9, "loss": 2.9}]
    csv = write(tmp_path, "r.csv", "params,tokens,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
    tsv = write(tmp_path, "r.tsv", "params\ttokens\tloss\n1e8\t2e9\t3.1\n2e8\t4e9\t2.9\n")
    jsonl = write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    arr = write(tmp_path, "r.json", json.dumps(rows))
    import pandas as pd

    pq = tmp_path / "r.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    ref = load_runs(csv)
    for p in (tsv, jsonl, arr, pq):
        t = load_runs(p)
        np.testing.assert_allclose(t.C, ref.C)
        np.testing.assert_allclose(t.loss, ref.loss)


def test_missing_rows_dropped_with_count(tmp_path):
    t = load_runs(write(tmp_path, "r.csv", "params,tokens,loss\n1e8,2e9,3.1\n2e8,,2.9\n3e8,4e9,\n"))
    assert len(t) == 1
    assert any("dropped 2 row(s)" in w for w in t.warnings)


def test_duplicates_reported(tmp_path):
    t = load_runs(write(tmp_path, "r.csv", "params,tokens,loss\n1e8,2e9,3.1\n1e8,2e9,3.1\n"))
    assert any("duplicate" in w for w in t.warnings)


@pytest.mark.parametrize("body,match", [
    ("params,tokens,loss\n1e8,2e9,-3\n", r"row 1 \(line 2\), column 'loss'"),
    ("params,tokens,loss\n1e8,2e9,3\n0,2e9,3\n", r"row 2 \(line 3\), column 'params'"),
    ("params,tokens,loss\n1e8,abc,3\n", r"row 1 \(line 2\), column 'tokens': 'abc' is not a number"),
    ("params,tokens,loss\n1e8,inf,3\n", r"column 'tokens'.*finite"),
    ("params,tokens,loss\nnan,1e9,3\n", r"column 'params'.*finite"),
    ("params,tokens\n1e8,2e9\n", "no loss column"),
    ("params,loss\n1e8,3\n", "need two of N"),
])
def test_bad_input_errors_name_file_row_column(tmp_path, body, match):
    p = write(tmp_path, "bad.csv", body)
    with pytest.raises(ScalePlanError, match=match) as e:
        load_runs(p)
    assert "bad.csv" in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(ScalePlanError, match="no such file"):
        load_runs(tmp_path / "nope.csv")
    with pytest.raises(ScalePlanError, match="line 2 is not valid JSON"):
        load_runs(write(tmp_path, "x.jsonl", '{"params": 1}\n{oops\n'))
    with pytest.raises(ScalePlanError, match="unknown file type"):
        load_runs(write(tmp_path, "x.xlsx", "whatever"))
    with pytest.raises(ScalePlanError, match="no column 'zzz'"):
        load_runs(write(tmp_path, "r.csv", "params,tokens,loss\n1,2,3\n"), {"loss": "zzz"})
    with pytest.raises(ScalePlanError, match="--param-count"):
        load_runs(write(tmp_path, "r2.csv", "params,tokens,loss\n1,2,3\n"), param_count="embedding")


def test_epoch_points_load_with_derived_tokens():
    # Epoch's digitised Chinchilla Fig. 4: 245 points, 'Model Size' and 'Training FLOP' columns, no tokens.
    t = load_runs(EPOCH_CSV)
    assert len(t) == 245
    assert t.columns["N"] == "Model Size" and t.columns["C"] == "Training FLOP"
    np.testing.assert_allclose(t.D, t.C / (6 * t.N))
    assert t.N.min() == pytest.approx(5.7e7, rel=0.05) and t.N.max() == pytest.approx(1.6e10, rel=0.05)


def test_learning_curves_final():
    t = load_runs(EXAMPLES / "misfitting_li2025" / "learning_curves.csv", {"run": "model+peak_lr+total_steps"})
    assert t.has_curves
    f = t.final()
    assert f.n_runs == t.n_runs == len(f)


def test_from_arrays_validates():
    t = from_arrays(N=[1e8, 2e8], D=[1e9, 2e9], loss=[3.0, 2.8])
    np.testing.assert_allclose(t.C, [6e17, 2.4e18])
    with pytest.raises(ScalePlanError):
        from_arrays(N=[1e8, -1], D=[1e9, 2e9], loss=[3.0, 2.8])
