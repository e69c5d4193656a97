"""Property tests for the run-log loader: random small tables written to CSV or JSON Lines either load with exactly
the values written or raise ScalePlanError with a one-line message naming the file; never another exception and
never a silently different number. Examples are few and small so the file runs in a few seconds."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling_planner.errors import ScalePlanError
from scaling_planner.io.runlog import load_runs

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

HEADERS = {"N": ["params", "N", "num_params", "Model Size"], "D": ["tokens", "D", "train_tokens"],
           "loss": ["loss", "val_loss", "eval_loss"]}


def count_cell(v: float, style: str) -> tuple[str, float | None]:
    """A count written in one of the accepted spellings, and the exact float the loader must read."""
    if style == "repr":
        return repr(v), v
    if style == "sci":
        return f"{v:.6e}", float(f"{v:.6e}")
    if style == "grouped":
        return f"{v:,.2f}", float(f"{v:.2f}")
    if style == "int":
        return f"{int(v):,}", float(int(v))
    if style == "suffix":
        m = repr(v / 1e9)
        return f"{m}B", float(m) * 1e9
    if style == "padded":
        return f"  {v!r} ", v
    return "", None  # blank: the row is dropped


COUNT_STYLES = st.sampled_from(["repr", "sci", "grouped", "int", "suffix", "padded", "blank"])
LOSS_STYLES = st.sampled_from(["repr", "sci", "padded", "blank"])
rows_strategy = st.lists(
    st.tuples(st.floats(1e6, 1e11), COUNT_STYLES, st.floats(1e8, 1e13), COUNT_STYLES,
              st.floats(1.5, 8.0), LOSS_STYLES, st.text(max_size=6)),
    min_size=1, max_size=6)


def write_csv(path, header, rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)  # "\r\n" rows: cells holding \r or \n get quoted
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("props")


@SETTINGS
@given(rows=rows_strategy, names=st.tuples(*(st.sampled_from(HEADERS[k]) for k in ("N", "D", "loss"))),
       note=st.booleans())
def test_valid_tables_load_exactly(folder, rows, names, note):
    path = folder / "valid.csv"
    header = [*names, "note"] if note else list(names)
    cells, want = [], []
    for n, ns, d, ds, loss, ls, text in rows:
        (nc, nv), (dc, dv), (lc, lv) = count_cell(n, ns), count_cell(d, ds), count_cell(loss, ls)
        cells.append([nc, dc, lc, text] if note else [nc, dc, lc])
        if None not in (nv, dv, lv):
            want.append((nv, dv, lv))
    write_csv(path, header, cells)
    if not want:
        with pytest.raises(ScalePlanError, match="every row has a missing value"):
            load_runs(path)
        return
    t = load_runs(path)
    N, D, L = map(np.array, zip(*want))
    np.testing.assert_array_equal(t.N, N)
    np.testing.assert_array_equal(t.D, D)
    np.testing.assert_array_equal(t.loss, L)
    np.testing.assert_allclose(t.C, 6 * N * D, rtol=1e-15)
    dropped = len(rows) - len(want)
    assert any(w.startswith(f"dropped {dropped} row(s)") for w in t.warnings) == (dropped > 0)


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([1e8, 2e8, 4e8]),
                               st.sampled_from([1e9, 2e9, 4e9]), st.floats(2.0, 4.0)), min_size=1, max_size=8))
def test_run_ids_either_identify_runs_or_are_an_error(folder, rows):
    path = folder / "runs.csv"
    write_csv(path, ["model", "params", "tokens", "loss"], [[r, repr(n), repr(d), repr(x)] for r, n, d, x in rows])
    several_n = any(len({n for r2, n, _, _ in rows if r2 == r}) > 1 for r, *_ in rows)
    try:
        t = load_runs(path)
    except ScalePlanError as e:
        msg = str(e)
        assert "\n" not in msg and str(path) in msg and "--col run=" in msg
        assert "run id" in msg
        return
    assert not several_n, "a run id with several N must be an error"
    for r in t.runs:  # every run has one N
        assert len(np.unique(t.N[t.run == r])) == 1
    np.testing.assert_array_equal(t.loss, [x for *_, x in rows])


TRICKY = ["1e8", "2e9", "3.1", "", " ", "nan", "NaN", "inf", "-inf", "1,5e8", "3,4521", "1,000", "1,000,000",
          "1,00", ",5", "1_000", "1__0", "abc", "-3", "0", "1e400", "1.3B", "350M", "2.5T", "1,300M", "1.000,5",
          "1 000", "12", "19.5", "25", "0.5", "1e-300", "True", '"', "\n", "∞", "١٢"]
cell = st.one_of(st.sampled_from(TRICKY), st.text(max_size=5),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr))


@SETTINGS
@given(header=st.lists(st.one_of(st.sampled_from(["params", "tokens", "loss", "flops", "model", "step", "budget",
                                                  "loss", "Loss", "x"]), st.text(max_size=4)), min_size=1, max_size=5),
       body=st.lists(st.lists(cell, min_size=5, max_size=5), min_size=1, max_size=5),
       loss_unit=st.sampled_from([None, "nats", "bits", "ppl"]), log10=st.sampled_from([(), ("flops",), ("params",)]))
def test_garbage_csv_loads_valid_numbers_or_raises_scaleplanerror(folder, header, body, loss_unit, log10):
    path = folder / "garbage.csv"
    write_csv(path, header, [row[: len(header)] for row in body])
    try:
        t = load_runs(path, loss_unit=loss_unit, log10=log10)
    except ScalePlanError as e:
        msg = str(e)
        assert msg and "\n" not in msg, msg
        assert "garbage.csv" in msg or msg.startswith("--")
        return
    for arr in (t.N, t.D, t.C, t.loss):
        assert arr.dtype == float and np.all(np.isfinite(arr)) and np.all(arr > 0)
    assert 1 <= len(t) <= len(body)


json_value = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12),
                       st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(TRICKY),
                       st.lists(st.integers(), max_size=2))


@SETTINGS
@given(records=st.lists(st.dictionaries(st.sampled_from(["N", "D", "C", "loss", "run"]), json_value, max_size=5),
                        min_size=1, max_size=5))
def test_garbage_jsonl_loads_valid_numbers_or_raises_scaleplanerror(folder, records):
    path = folder / "garbage.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    try:
        t = load_runs(path)
    except ScalePlanError as e:
        assert "\n" not in str(e) and "garbage.jsonl" in str(e)
        return
    for arr in (t.N, t.D, t.C, t.loss):
        assert np.all(np.isfinite(arr)) and np.all(arr > 0)
    # every literal NaN/Infinity in a used column is an error, so a table that loaded had none
    for r in records:
        for k in ("N", "D", "C", "loss"):
            v = r.get(k)
            assert not (isinstance(v, float) and not math.isfinite(v)) or k not in t.columns
