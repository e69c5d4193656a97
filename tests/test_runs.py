import json

import numpy as np
import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.io.runlog import ALIASES, from_arrays, load_runs
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
        value = {"run": "a", "step": "7", "budget": "1.2e18"}[role]
        p = write(tmp_path, "r.csv", f"params,tokens,loss,{alias}\n1e8,2e9,3.1,{value}\n")
        t = load_runs(p)
        assert t.columns[role] == alias
        assert getattr(t, role)[0] == (value if role == "run" else float(value))


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


# ---------------------------------------------------------------------------------------------- commas in cells
@pytest.mark.parametrize("cell,col,fix", [
    ('"1,5e8"', "params", "use a dot as the decimal separator: 1.5e8"),
    ('"3,4521"', "loss", "use a dot as the decimal separator: 3.4521"),
    ('"3,452"', "loss", "use a dot as the decimal separator: 3.452"),  # valid grouping, but never for a loss
    ('"1,00"', "tokens", "use a dot as the decimal separator: 1.00"),
    ('"1,000,00"', "tokens", "groups of three digits"),
])
def test_bad_comma_in_cell_is_an_error_naming_row_line_column(tmp_path, cell, col, fix):
    cells = {"params": "1e8", "tokens": "2e9", "loss": "3.1"}
    cells[col] = cell
    p = write(tmp_path, "c.csv", "params,tokens,loss\n3e8,6e9,2.9\n" + ",".join(cells.values()) + "\n")
    with pytest.raises(ScalePlanError) as e:
        load_runs(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: row 2 (line 3), column {col!r}: {cell.strip(chr(34))!r} is not a number")
    assert fix in msg and "\n" not in msg


def test_valid_thousands_separators_in_cells(tmp_path):
    p = write(tmp_path, "r.csv", 'params,tokens,loss\n"1,300M","12,345,678,901",3.1\n"100,000,000",2.5T,2.9\n')
    t = load_runs(p)
    np.testing.assert_array_equal(t.N, [1.3e9, 1e8])
    np.testing.assert_array_equal(t.D, [12_345_678_901.0, 2.5e12])


def test_line_numbers_count_blank_lines_and_jsonl_gaps(tmp_path):
    with pytest.raises(ScalePlanError, match=r"row 2 \(line 5\), column 'tokens'"):
        load_runs(write(tmp_path, "r.csv", "params,tokens,loss\n1e8,2e9,3.1\n\n\n3e8,abc,2.9\n"))
    with pytest.raises(ScalePlanError, match=r"row 2 \(line 4\), column 'loss'"):
        load_runs(write(tmp_path, "r.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3}\n\n\n{"N": 3e8, "D": 6e9, '
                                             '"loss": "x"}\n'))


# ------------------------------------------------------------------------------- nan / missing: one rule everywhere
@pytest.mark.parametrize("name,body,where", [
    ("a.csv", "params,tokens,loss\n1e8,2e9,3.1\n3e8,6e9,nan\n", "row 2 (line 3), column 'loss'"),
    ("b.csv", "params,tokens,loss\n1e8,-inf,3.1\n", "row 1 (line 2), column 'tokens'"),
    ("c.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3.1}\n{"N": 3e8, "D": 6e9, "loss": NaN}\n',
     "row 2 (line 2), column 'loss'"),
    ("d.jsonl", '{"N": 1e8, "D": Infinity, "loss": 3.1}\n', "row 1 (line 1), column 'D'"),
    ("e.jsonl", '{"N": 1e8, "D": 2e9, "loss": "nan"}\n', "row 1 (line 1), column 'loss'"),
    ("f.json", '[{"N": 1e8, "D": 2e9, "loss": 3.1}, {"N": NaN, "D": 2e9, "loss": 3.1}]', "row 2, column 'N'"),
])
def test_literal_nan_inf_is_an_error_in_every_format(tmp_path, name, body, where):
    with pytest.raises(ScalePlanError) as e:
        load_runs(write(tmp_path, name, body))
    msg = str(e.value)
    assert where in msg and "is not a finite number" in msg and "leave the cell empty" in msg, msg


def test_literal_nan_in_parquet_is_an_error_but_null_is_dropped(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    loss = pa.array([3.1, float("nan"), 2.9], from_pandas=False)
    pq.write_table(pa.table({"N": [1e8, 2e8, 3e8], "D": [1e9, 2e9, 3e9], "loss": loss}), tmp_path / "nan.parquet")
    with pytest.raises(ScalePlanError, match=r"row 2, column 'loss': 'NaN' is not a finite number"):
        load_runs(tmp_path / "nan.parquet")
    pq.write_table(pa.table({"N": [1e8, 2e8, 3e8], "D": [1e9, 2e9, 3e9], "loss": pa.array([3.1, None, 2.9])}),
                   tmp_path / "null.parquet")
    t = load_runs(tmp_path / "null.parquet")
    np.testing.assert_array_equal(t.loss, [3.1, 2.9])
    assert "dropped 1 row(s) with missing values in N, D, loss" in t.warnings


@pytest.mark.parametrize("name,body", [
    ("r.csv", "params,tokens,loss\n1e8,2e9,3.1\n2e8,,2.9\n3e8,4e9,\n4e8,8e9,2.7\n"),
    ("r.jsonl", '{"params": 1e8, "tokens": 2e9, "loss": 3.1}\n{"params": 2e8, "tokens": null, "loss": 2.9}\n'
                '{"params": 3e8, "tokens": 4e9}\n{"params": 4e8, "tokens": 8e9, "loss": 2.7}\n'),
    ("r.json", '[{"params": 1e8, "tokens": 2e9, "loss": 3.1}, {"params": 2e8, "tokens": null, "loss": 2.9}, '
               '{"params": 3e8, "tokens": 4e9}, {"params": 4e8, "tokens": 8e9, "loss": 2.7}]'),
])
def test_empty_null_or_missing_key_drops_the_row_with_a_count(tmp_path, name, body):
    t = load_runs(write(tmp_path, name, body))
    np.testing.assert_array_equal(t.N, [1e8, 4e8])
    np.testing.assert_array_equal(t.loss, [3.1, 2.7])
    assert any(w.startswith("dropped 2 row(s) with missing values") for w in t.warnings)


# ------------------------------------------------------------------------------------------ duplicate columns
def test_two_columns_with_the_same_name_are_an_error(tmp_path):
    p = write(tmp_path, "d.csv", "params,tokens,loss,loss\n1e8,2e9,3.1,9.9\n3e8,6e9,2.9,9.9\n")
    with pytest.raises(ScalePlanError) as e:
        load_runs(p)
    assert str(e.value) == (f"{p}: 2 columns are named 'loss' and would both be the loss column; pick one with "
                            "--col loss=loss or --col loss=loss.1 (pandas names the second 'loss.1'), or rename one")
    t = load_runs(p, {"loss": "loss.1"})  # the suggested fix works
    np.testing.assert_array_equal(t.loss, [9.9, 9.9])
    np.testing.assert_array_equal(load_runs(p, {"loss": "loss"}).loss, [3.1, 2.9])


def test_names_differing_only_in_case_are_an_error(tmp_path):
    p = write(tmp_path, "d.csv", "params,Tokens,tokens,loss\n1e8,2e9,4e9,3.1\n")
    with pytest.raises(ScalePlanError, match=r"columns 'Tokens', 'tokens' differ only in case.*--col D=Tokens"):
        load_runs(p)
    assert load_runs(p, {"D": "tokens"}).D[0] == 4e9


def test_different_aliases_still_only_warn(tmp_path):
    t = load_runs(write(tmp_path, "r.csv", "params,tokens,loss,val_loss\n1e8,2e9,3.1,3.3\n"))
    assert t.loss[0] == 3.1
    assert any("also matched 'val_loss'" in w for w in t.warnings)


def test_duplicate_non_role_columns_are_fine(tmp_path):
    t = load_runs(write(tmp_path, "r.csv", "params,tokens,loss,note,note\n1e8,2e9,3.1,a,b\n"))
    assert t.loss[0] == 3.1


# -------------------------------------------------------------------------------------------------- run ids
def test_run_id_with_several_N_is_an_error_naming_id_and_columns(tmp_path):
    rows = "".join(f"exp1,{lr},{n:g},{d:g},{3 - 0.1 * i}\n" for i, (lr, n, d) in enumerate(
        [(1, 1e8, 1e9), (1, 1e8, 2e9), (2, 2e8, 1e9), (2, 2e8, 2e9)]))
    p = write(tmp_path, "r.csv", "name,lr,params,tokens,loss\n" + rows)
    with pytest.raises(ScalePlanError) as e:
        load_runs(p)
    assert str(e.value) == (f"{p}: run id 'exp1' (column 'name') has 2 different N values (1e+08, 2e+08), but a "
                            "run's N is constant across its checkpoints; join columns into the run id with "
                            "--col run=name+lr")
    t = load_runs(p, {"run": "name+lr"})  # the suggested fix loads
    assert t.n_runs == 2 and list(t.runs) == ["exp1|1", "exp1|2"]


def test_run_id_several_N_without_candidates(tmp_path):
    with pytest.raises(ScalePlanError, match=r"run id 'a' \(column 'model'\) has 2 different N values.*--col run=A\+B"):
        load_runs(write(tmp_path, "r.csv", "model,params,tokens,loss\na,1e8,1e9,3\na,2e8,1e9,2.9\n"))
    with pytest.raises(ScalePlanError, match=r"run id 'r0' \(column 'run'\) has 3 different N"):
        from_arrays(run=["r0"] * 3, N=[1e8, 2e8, 3e8], D=[1e9] * 3, loss=[3.0, 2.9, 2.8])


def test_learning_curves_without_col_run_is_an_error_suggesting_the_readme_key():
    path = EXAMPLES / "misfitting_li2025" / "learning_curves.csv"
    with pytest.raises(ScalePlanError) as e:
        load_runs(path)  # 'model' is auto-detected: 240 runs would merge into 11
    msg = str(e.value)
    assert "run ids from column 'model' merge several training curves" in msg
    assert msg.endswith("--col run=model+peak_lr+total_steps")
    t = load_runs(path, {"run": "model+peak_lr+total_steps"})
    assert t.n_runs == 240
    assert any("repeat a run's D with a different loss" in w for w in t.warnings)  # a few re-runs share an id


def test_run_id_shared_by_several_curves_of_one_size(tmp_path):
    rows = "".join(f"m,{seed},1e8,{d:g},{3 - 0.1 * k + 0.01 * seed}\n" for seed in (0, 1, 2)
                   for k, d in enumerate((1e9, 2e9, 4e9)))
    p = write(tmp_path, "r.csv", "model,seed,params,tokens,loss\n" + rows)
    with pytest.raises(ScalePlanError, match=r"6 of 9 rows repeat a run's D with a different loss.*--col run=model\+seed$"):
        load_runs(p)
    assert load_runs(p, {"run": "model+seed"}).n_runs == 3


def test_legit_run_ids_load(tmp_path):
    rows = "".join(f"{m},{n:g},{d:g},{2 + 1e9 / n * 0.1 + 1e9 / d * 0.1}\n" for m, n in (("s", 1e8), ("l", 1e9))
                   for d in (1e9, 2e9, 4e9))
    t = load_runs(write(tmp_path, "r.csv", "model,params,tokens,loss\n" + rows))
    assert t.n_runs == 2 and t.has_curves and not t.warnings


# ---------------------------------------------------------------------------------------------------- units
def ppl_file(tmp_path, name="p.csv", col="loss", values=(25.0, 21.0, 18.5, 16.0)):
    rows = "".join(f"{n:g},{d:g},{v}\n" for (n, d), v in zip([(1e8, 2e9), (3e8, 6e9), (1e9, 2e10), (3e9, 6e10)],
                                                             values))
    return write(tmp_path, name, f"params,tokens,{col}\n" + rows)


def test_perplexity_scale_loss_is_an_error_with_the_hint(tmp_path):
    p = ppl_file(tmp_path)
    with pytest.raises(ScalePlanError) as e:
        load_runs(p)
    assert str(e.value) == (f"{p}: loss column 'loss' has median 19.8, too high for a loss in nats per token (1.5-8 "
                            "is typical): looks like perplexity; pass --loss-unit ppl (or --loss-unit nats if it "
                            "really is nats)")


def test_loss_unit_ppl_and_bits_convert_to_nats(tmp_path):
    p = ppl_file(tmp_path)
    t = load_runs(p, loss_unit="ppl")
    np.testing.assert_allclose(t.loss, np.log([25.0, 21.0, 18.5, 16.0]), rtol=1e-15)
    assert "loss = ln(loss) (perplexity to nats, --loss-unit ppl)" in t.derived
    t = load_runs(ppl_file(tmp_path, "b.csv", values=(4.0, 3.5, 3.0, 2.9)), loss_unit="bits")
    np.testing.assert_allclose(t.loss, np.array([4.0, 3.5, 3.0, 2.9]) * np.log(2), rtol=1e-15)
    assert "loss = loss x ln 2 (bits to nats, --loss-unit bits)" in t.derived
    t = load_runs(p, loss_unit="nats")  # explicit nats: the escape hatch, no guessing
    np.testing.assert_array_equal(t.loss, [25.0, 21.0, 18.5, 16.0])
    assert not any("loss" in d for d in t.derived)


def test_loss_column_names_that_state_a_unit(tmp_path):
    p = ppl_file(tmp_path, col="val_ppl", values=(8.0, 7.0, 6.0, 5.5))  # median < 10, but the name says ppl
    with pytest.raises(ScalePlanError, match=r"loss column 'val_ppl' looks like perplexity by its name; pass "
                                             r"--loss-unit ppl"):
        load_runs(p, {"loss": "val_ppl"})
    assert load_runs(p, {"loss": "val_ppl"}, loss_unit="ppl").loss[0] == pytest.approx(np.log(8.0))
    p = ppl_file(tmp_path, "b.csv", col="loss_bits", values=(4.0, 3.5, 3.0, 2.9))
    with pytest.raises(ScalePlanError, match=r"'loss_bits' looks like bits by its name; pass --loss-unit bits"):
        load_runs(p, {"loss": "loss_bits"})


def test_perplexity_must_exceed_one(tmp_path):
    p = ppl_file(tmp_path, values=(3.1, 2.9, 0.9, 2.5))
    with pytest.raises(ScalePlanError, match=r"row 3 \(line 4\), column 'loss': perplexity '0.9' must be > 1"):
        load_runs(p, loss_unit="ppl")


def test_bad_loss_unit():
    with pytest.raises(ScalePlanError, match=r"--loss-unit 'furlongs': use nats, bits or ppl"):
        load_runs(EPOCH_CSV, loss_unit="furlongs")


@pytest.mark.parametrize("loss", [1.5, 2.0, 3.3, 5.0, 8.0])
def test_real_losses_never_trip(tmp_path, loss):
    t = load_runs(ppl_file(tmp_path, values=(loss,) * 4))
    assert t.loss[0] == loss


def test_log10_flops_is_an_error_then_loads_with_log10(tmp_path):
    p = write(tmp_path, "l.csv", "params,log_flops,loss\n1e8,19.1,3.2\n3e8,20.0,3.0\n1e9,21.2,2.8\n")
    with pytest.raises(ScalePlanError) as e:
        load_runs(p, {"C": "log_flops"})
    assert str(e.value) == (f"{p}: column 'log_flops' (C) has values 19.1 to 21.2, far too small for FLOPs (the "
                            "largest is below 1e+09): looks like log10 FLOPs; pass --log10 log_flops")
    t = load_runs(p, {"C": "log_flops"}, log10=("log_flops",))
    np.testing.assert_allclose(t.C, [10**19.1, 1e20, 10**21.2], rtol=1e-14)
    np.testing.assert_allclose(t.D, t.C / (6 * t.N))
    assert "C = 10**log_flops (--log10)" in t.derived


def test_log10_accepts_comma_string_and_role_names(tmp_path):
    p = write(tmp_path, "l.csv", "N,D,loss\n8,9.5,3.2\n9,10.5,3.0\n")
    with pytest.raises(ScalePlanError, match=r"column 'N' \(N\) has values 8 to 9.*pass --log10 N"):
        load_runs(p)
    t = load_runs(p, log10="N,D")
    np.testing.assert_allclose(t.N, [1e8, 1e9], rtol=1e-14)
    np.testing.assert_allclose(t.D, [10**9.5, 10**10.5], rtol=1e-14)
    assert t.derived[:2] == ("N = 10**N (--log10)", "D = 10**D (--log10)")


@pytest.mark.parametrize("log10,match", [
    (("flops",), r"--log10 flops: no column 'flops'; columns are N, D, loss"),
    (("loss",), r"--log10 loss: column 'loss' is not an N, D, C or budget column \(it is the loss column\)"),
    (("D",), r"--log10 D: row 1 \(line 2\) holds '2e9', not a log10 value"),
])
def test_log10_misuse(tmp_path, log10, match):
    with pytest.raises(ScalePlanError, match=match):
        load_runs(write(tmp_path, "r.csv", "N,D,loss\n1e8,2e9,3.1\n"), log10=log10)


@pytest.mark.parametrize("header,row,match", [
    ("params,tokens,loss", "350,2e9,3.1", r"column 'params' \(N\) has values 12 to 350.*in millions or billions"),
    ("params,tokens,loss", "1e8,300,3.1", r"column 'tokens' \(D\) has values 20 to 300.*token counts in millions"),
    ("params,compute,loss", "1e8,18.5,3.1", r"column 'compute' \(C\) has values 18.5 to 20.*log10 FLOPs \(pass "
                                           r"--log10 compute\) or PF-days \(pass --flops-unit pf-days\)"),
    ("params,pf_days,loss", "1e8,0.5,3.1", r"looks like PF-days; pass --flops-unit pf-days"),
])
def test_counts_too_small_are_errors(tmp_path, header, row, match):
    first = {"params,tokens,loss": ("12,2e9,3.3" if "350" in row else "1e8,20,3.3"),
             "params,compute,loss": "1e8,20,3.3", "params,pf_days,loss": "1e8,0.001,3.3"}[header]
    p = write(tmp_path, "r.csv", f"{header}\n{first}\n{row}\n")
    cols = {"C": "pf_days"} if "pf_days" in header else None
    with pytest.raises(ScalePlanError, match=match):
        load_runs(p, cols)


@pytest.mark.parametrize("n", [1e6, 3.3e7, 1e9, 7e10, 1e11])
def test_real_counts_never_trip(tmp_path, n):
    t = load_runs(write(tmp_path, "r.csv", f"params,tokens,loss\n{n:g},{20 * n:g},2.5\n{n:g},{40 * n:g},2.4\n"))
    assert t.N[0] == n and t.C[0] == pytest.approx(6 * n * 20 * n)


def test_pf_days_fix_for_small_compute(tmp_path):
    p = write(tmp_path, "r.csv", "params,compute,loss\n1e8,0.001,3.1\n1e9,3.5,2.9\n")
    with pytest.raises(ScalePlanError, match="pass --flops-unit pf-days"):
        load_runs(p)
    assert load_runs(p, flops_unit="pf-days").C[1] == pytest.approx(3.5 * PF_DAY)


def test_from_arrays_overflow_is_an_error():
    with pytest.raises(ScalePlanError, match=r"row 2: C = 6·N·D is out of range"):
        from_arrays(N=[1e8, 1e300], D=[1e9, 1e300], loss=[3, 2])
    with pytest.raises(ScalePlanError, match=r"row 2, column 'loss': inf is not a finite number"):
        from_arrays(N=[1e8, 2e8], D=[1e9, 2e9], loss=[3, np.inf])


# ------------------------------------------------------------------------------------- the installed CLI
def _scaleplan(*args, cwd):
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "scaleplan"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "scaling_planner"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("name,body,args,expect", [
    ("c.csv", 'params,tokens,loss\n1e8,2e9,"3,4521"\n3e8,6e9,2.9\n', [],
     "c.csv: row 1 (line 2), column 'loss': '3,4521' is not a number: use a dot as the decimal separator: 3.4521"),
    ("p.csv", "params,tokens,loss\n1e8,2e9,25\n3e8,6e9,21\n", [], "looks like perplexity; pass --loss-unit ppl"),
    ("l.csv", "params,log10_flops,loss\n1e8,19.1,3.2\n3e8,20.0,3.0\n", ["--col", "C=log10_flops"],
     "looks like log10 FLOPs; pass --log10 log10_flops"),
    ("m.csv", "name,lr,params,tokens,loss\na,1,1e8,1e9,3\na,2,2e8,1e9,2.9\n", [],
     "run id 'a' (column 'name') has 2 different N values (1e+08, 2e+08), but a run's N is constant across its "
     "checkpoints; join columns into the run id with --col run=name+lr"),
])
def test_cli_bad_run_logs_exit_2_one_line(tmp_path, name, body, args, expect):
    write(tmp_path, name, body)
    r = _scaleplan("fit", name, "--bootstrap", "0", *args, cwd=tmp_path)
    assert "Traceback" not in r.stderr
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expect in lines[0]
    assert r.stdout == ""


def test_cli_loss_unit_and_log10_options(tmp_path):
    rows = "".join(f"{n:g},{19 + i * 0.5:.2f},{30 - 2 * i}\n" for i, n in enumerate([1e8, 2e8, 4e8, 8e8, 1.6e9]))
    write(tmp_path, "u.csv", "params,lf,ppl\n" + rows)
    r = _scaleplan("fit", "u.csv", "--col", "C=lf", "--col", "loss=ppl", "--loss-unit", "ppl", "--log10", "lf",
                   "--method", "kaplan_C", "--bootstrap", "0", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "C = 10**lf (--log10)" in out["input"]["derived"]
    assert "loss = ln(ppl) (perplexity to nats, --loss-unit ppl)" in out["input"]["derived"]
    assert out["input"]["C_range"] == pytest.approx([1e19, 1e21])


def test_pf_day_budget_column_alone_converts_compute_too(tmp_path):
    """An IsoFLOP table with only a budget column in PF-days: C is the budget, in FLOPs (1 PF-day = 8.64e19)."""
    from scaling_planner.io.runlog import load_runs

    p = tmp_path / "pf.csv"
    p.write_text("N,budget,loss\n1e8,1,3.2\n3e8,1,3.1\n1e8,3,3.0\n3e8,3,2.9\n")
    t = load_runs(p, flops_unit="pf-days")
    assert t.C[0] == pytest.approx(8.64e19) and t.budget[2] == pytest.approx(3 * 8.64e19)
    assert t.D[0] == pytest.approx(8.64e19 / 6e8)
