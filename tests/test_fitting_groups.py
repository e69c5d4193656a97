"""Conditions in one run log: --where (a row filter), --group-by (one fit per group, a comparison at one budget, one
law per group) and --holdout-by (hold out the largest runs by compute or by size), docs/fitting.md §3.8 and §3.6."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.fitting import fit, fit_groups, holdout_runs
from scaling_planner.io.runlog import from_arrays, load_run_groups, load_runs

FIXTURES = Path(__file__).parent / "fixtures"
PORIAN = FIXTURES / "porian2024" / "isoflop_points_rw_standard.csv"

# two conditions with different laws: L = E + A/N^alpha + B/D^beta; a = beta/(alpha+beta)
LAWS = {"c4": dict(E=1.8, A=480.0, B=2100.0, alpha=0.34, beta=0.28),  # a = 0.4516
        "rpj": dict(E=2.1, A=400.0, B=1600.0, alpha=0.28, beta=0.37)}  # a = 0.5692


def _a(p):
    return p["beta"] / (p["alpha"] + p["beta"])


def _loss(N, D, p):
    return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]


def _grid_rows(dataset: str, p: dict, warmup: str = "long"):
    """A full grid of sizes x tokens (36 runs), final losses exactly on the law."""
    rows = []
    for N in np.geomspace(5e7, 5e9, 6):
        for tpp in (5, 10, 20, 40, 80, 160):
            D = tpp * N
            rows.append(f"{dataset},{warmup},{N:.6g},{D:.6g},{_loss(N, D, p):.8f}")
    return rows


@pytest.fixture
def two_datasets(tmp_path):
    path = tmp_path / "runs.csv"
    rows = _grid_rows("c4", LAWS["c4"]) + _grid_rows("rpj", LAWS["rpj"])
    path.write_text("dataset,warmup,params,tokens,loss\n" + "\n".join(rows) + "\n")
    return path


# ------------------------------------------------------------------ --where
def test_where_filters_rows_by_a_column_that_is_no_role(two_datasets):
    t = load_runs(two_datasets, where='dataset == "rpj"')
    assert len(t) == 36
    p = LAWS["rpj"]
    np.testing.assert_allclose(t.loss, _loss(t.N, t.D, p), rtol=1e-6)  # only rpj's rows
    assert t.derived[0] == 'rows where dataset == "rpj": 36 of 72'


def test_where_compares_numbers_as_numbers(two_datasets):
    # CSV cells are text; a column of plain numbers is compared as numbers (1e9 > 5e8 as numbers, not as text)
    t = load_runs(two_datasets, where="params > 5e8 and dataset == 'c4'")
    assert len(t) == 18 and t.N.min() > 5e8


@pytest.mark.parametrize("expr,match", [
    ('datset == "c4"', "no column 'datset' (did you mean 'dataset'?); columns are dataset, warmup, params, tokens, loss"),
    ('dataset ==', "not a valid condition"),
    ('dataset = "c4"', "compare with =="),
    ('params', "is not a condition"),
    ('dataset == "c5"', "matches none of the 72 rows (dataset has 'c4', 'rpj')"),
    ('dataset > 3', "cannot evaluate it"),
    ('@x > 1', "@variables are not available"),
    ('', "--where is empty"),
])
def test_where_errors_name_the_file_and_expression(two_datasets, expr, match):
    with pytest.raises(ScalePlanError, match="runs.csv") as e:
        load_runs(two_datasets, where=expr)
    msg = str(e.value)
    assert match in msg and "\n" not in msg
    if expr:
        assert f"--where {expr!r}" in msg


# ------------------------------------------------------------------ load_run_groups
def test_groups_are_named_col_value_in_file_order(two_datasets):
    g = load_run_groups(two_datasets, group_by="dataset,warmup")
    assert list(g) == ["dataset=c4,warmup=long", "dataset=rpj,warmup=long"]
    assert g.conditions["dataset=rpj,warmup=long"] == {"dataset": "rpj", "warmup": "long"}
    assert g.by == ("dataset", "warmup") and g.skipped == {} and g.rows == 72
    for name, p in (("dataset=c4,warmup=long", LAWS["c4"]), ("dataset=rpj,warmup=long", LAWS["rpj"])):
        t = g[name]
        assert len(t) == 36
        np.testing.assert_allclose(t.loss, _loss(t.N, t.D, p), rtol=1e-6)
    g = load_run_groups(two_datasets, group_by=["dataset"], where="params < 1e9")
    assert {k: len(v) for k, v in g.items()} == {"dataset=c4": 24, "dataset=rpj": 24}  # 4 of 6 sizes
    assert g["dataset=c4"].derived[0] == "rows where params < 1e9: 48 of 72"


def test_group_errors(two_datasets, tmp_path):
    with pytest.raises(ScalePlanError, match="--group-by datset: no column 'datset' .did you mean 'dataset'.."):
        load_run_groups(two_datasets, group_by="datset")
    with pytest.raises(ScalePlanError, match="makes 72 groups of 72 rows .column .loss. has 72 distinct values."):
        load_run_groups(two_datasets, group_by="loss")
    with pytest.raises(ScalePlanError, match="--group-by is empty"):
        load_run_groups(two_datasets, group_by=" , ")
    # a group whose rows cannot be read is skipped with the reason; the others are read
    bad = tmp_path / "bad.csv"
    bad.write_text(two_datasets.read_text() + "pile,long,1e8,2e9,\npile,long,2e8,4e9,\n")
    g = load_run_groups(bad, group_by="dataset")
    assert list(g) == ["dataset=c4", "dataset=rpj"]
    assert "every row has a missing value" in g.skipped["dataset=pile"]


# ------------------------------------------------------------------ fit_groups
@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    path = tmp_path_factory.mktemp("groups") / "runs.csv"
    rows = _grid_rows("c4", LAWS["c4"]) + _grid_rows("rpj", LAWS["rpj"])[:30] + ["tiny,long,1e8,2e9,3.1"]
    path.write_text("dataset,warmup,params,tokens,loss\n" + "\n".join(rows) + "\n")
    return fit_groups(load_run_groups(path, group_by="dataset"), ["approach3", "kaplan_N"], bootstrap=0)


def test_each_group_is_fitted_on_its_own_rows(grouped):
    for g, p in (("dataset=c4", LAWS["c4"]), ("dataset=rpj", LAWS["rpj"])):
        f = grouped.get(g).get("approach3")
        assert f.params["alpha"] == pytest.approx(p["alpha"], abs=0.01)
        assert f.params["beta"] == pytest.approx(p["beta"], abs=0.01)
        assert f.derived["a"] == pytest.approx(_a(p), abs=0.01)
    assert grouped.get("dataset=c4").table.n_runs == 36 and grouped.get("dataset=rpj").table.n_runs == 30


def test_groups_report_at_one_common_budget(grouped):
    # the largest compute across all groups (c4's; rpj's largest runs were left out), not each group's own
    common = 6 * 5e9 * 160 * 5e9
    assert grouped.at_flops == pytest.approx(common, rel=1e-5)
    assert grouped.at_flops_source == "largest compute across all groups"
    rpj = grouped.get("dataset=rpj")
    assert rpj.table.C.max() < 0.5 * common
    f = rpj.get("approach3")
    assert f.derived["at_flops"] == pytest.approx(common, rel=1e-5)
    from scaling_planner import laws

    p = LAWS["rpj"]
    n_opt, _ = laws.chinchilla_optimal(common, p["E"], p["A"], p["B"], p["alpha"], p["beta"])
    assert f.derived["N_opt"] == pytest.approx(n_opt, rel=0.05)  # the generating law's optimum at that budget
    assert rpj.options["at_flops"] is None and rpj.options["group"] == "dataset=rpj"
    again = fit_groups({"x": rpj.table}, ["approach3"], bootstrap=0, at_flops=1e21)
    assert again.at_flops == 1e21 and again.get("x").get("approach3").derived["at_flops"] == 1e21


def test_a_group_that_cannot_be_fitted_is_skipped(grouped):
    assert grouped.skipped == {"dataset=tiny": "only 1 run(s); at least 3 are needed to fit a law"}
    assert grouped.groups == ["dataset=c4", "dataset=rpj"]
    t = from_arrays(N=[1e8, 2e8], D=[1e9, 2e9], loss=[3.0, 2.9])
    with pytest.raises(ScalePlanError, match="no group could be fitted: every one of the 2 groups: only 2 run.s."):
        fit_groups({"a": t, "b": t}, bootstrap=0)
    with pytest.raises(ScalePlanError, match="no group could be fitted: a: only 2 run.s.*; b: only 1 run"):
        fit_groups({"a": t, "b": t.subset(np.array([True, False]))}, bootstrap=0)
    good = grouped.get("dataset=c4").table
    with pytest.raises(ScalePlanError, match="^holdout 50: the data has only 36 runs") as e:  # one group: its error
        fit_groups({"a": good}, ["kaplan_N"], bootstrap=0, holdout=50)
    assert e.value.param == "holdout"
    with pytest.raises(ScalePlanError, match="^loss must be one of") as e:  # a bad option is its own error
        fit_groups({"a": good, "b": good}, bootstrap=0, loss="l7")
    with pytest.raises(ScalePlanError, match="unknown method 'approach9'"):
        fit_groups({"a": good, "b": good}, ["approach9"], bootstrap=0)


def test_comparison_rows_and_json_shape(grouped):
    rows = grouped.comparison()
    assert [(r["group"], r["method"]) for r in rows] == [  # groups in file order, methods as asked
        ("dataset=c4", "approach3"), ("dataset=c4", "kaplan_N"), ("dataset=rpj", "approach3"),
        ("dataset=rpj", "kaplan_N")]
    a3 = rows[0]
    assert a3["keys"] == {"dataset": "c4"}
    assert set(a3["exponents"]) == {"a", "b", "alpha", "beta"}
    assert a3["exponents"]["a"] == pytest.approx(_a(LAWS["c4"]), abs=0.01)
    assert a3["N_opt"] == grouped.get("dataset=c4").get("approach3").derived["N_opt"]
    assert a3["loss"] == grouped.get("dataset=c4").get("approach3").derived["loss_opt"]
    assert set(rows[1]["exponents"]) == {"alpha_N"} and rows[1]["N_opt"] is None
    d = json.loads(json.dumps(grouped.to_dict()))
    assert set(d) >= {"input", "group_by", "where", "at_flops", "at_flops_source", "groups", "skipped_groups",
                      "comparison", "holdout", "options"}
    assert list(d["groups"]) == ["dataset=c4", "dataset=rpj"]
    single = fit(grouped.get("dataset=c4").table, ["approach3", "kaplan_N"], bootstrap=0).to_dict()
    g = d["groups"]["dataset=c4"]
    assert set(g) == set(single) | {"condition"} and g["condition"] == {"dataset": "c4"}
    assert [f["method"] for f in g["fits"]] == ["approach3", "kaplan_N"]
    assert set(g["fits"][0]) == set(single["fits"][0])
    assert d["skipped_groups"] == {"dataset=tiny": "only 1 run(s); at least 3 are needed to fit a law"}
    assert d["input"]["groups"] == 3 and d["input"]["groups_fitted"] == 2 and d["group_by"] == ["dataset"]
    assert "dataset=c4" in grouped.summary()


def test_one_law_per_group(grouped):
    laws, missing = grouped.to_laws("mylaw")
    assert list(laws) == ["dataset=c4", "dataset=rpj"] and missing == {}
    law = laws["dataset=rpj"]
    assert law.name == "mylaw.dataset-rpj" and "[dataset=rpj]" in law.title
    assert law.params["alpha"] == pytest.approx(LAWS["rpj"]["alpha"], abs=0.01)
    assert law.fit["options"]["group"] == "dataset=rpj"


# ------------------------------------------------------------------ holdout by compute or by size
def test_holdout_by_size_holds_out_every_run_of_the_largest_sizes():
    rows = [r.split(",") for r in _grid_rows("c4", LAWS["c4"])]
    N, D, L = (np.array([float(r[i]) for r in rows]) for i in (2, 3, 4))
    t = from_arrays(N=N, D=D, loss=L, run=np.array([f"r{i}" for i in range(len(N))]))
    sizes = np.unique(N)
    held = holdout_runs(t, 2, "size")
    assert set(held) == set(t.run[N >= sizes[-2] * (1 - 1e-6)]) and len(held) == 12
    by_c = holdout_runs(t, 12, "compute")
    assert set(by_c) != set(held)  # the largest-compute runs are not the largest models
    rep = fit(t, ["approach3", "kaplan_N"], bootstrap=0, holdout=2, holdout_by="size")
    h = rep.get("approach3").holdout
    assert h["by"] == "size" and h["k"] == 2 and h["n_points"] == 12
    assert h["max_train_N"] == pytest.approx(sizes[-3], rel=1e-6)
    assert sorted({q["N"] for q in h["points"]}) == pytest.approx(sizes[-2:], rel=1e-6)
    assert h["max_abs_rel_error"] < 1e-3  # exact data from the law extrapolate exactly
    hc = fit(t, ["approach3"], bootstrap=0, holdout=2).get("approach3").holdout
    assert hc["by"] == "compute" and hc["max_train_N"] == pytest.approx(sizes[-1], rel=1e-6)
    with pytest.raises(ScalePlanError, match="holdout 5 by size: the data has only 6 model sizes") as e:
        fit(t, ["kaplan_N"], bootstrap=0, holdout=5, holdout_by="size")
    assert e.value.param == "holdout"
    with pytest.raises(ScalePlanError, match="holdout_by must be one of compute, size") as e:
        fit(t, ["kaplan_N"], bootstrap=0, holdout=1, holdout_by="flops")
    assert e.value.param == "holdout_by"
    # side by side: one row per method
    table = rep.holdout_table()
    assert [r["method"] for r in table] == ["approach3", "kaplan_N"]
    assert table[0]["runs"] == 12 and table[0]["mean_abs_rel_error"] < 1e-3
    assert table[1]["runs"] == 12 and table[1]["mean_abs_rel_error"] > 0.01  # L(N) alone misses the D term
    d = rep.to_dict()
    assert d["holdout"]["by"] == "size" and d["holdout"]["k"] == 2 and len(d["holdout"]["methods"]) == 2
    for key in ("runs", "n_points", "max_train_flops", "mean_abs_rel_error", "max_abs_rel_error", "points"):
        assert key in d["fits"][0]["holdout"]  # the existing keys are kept
    assert fit(t, ["kaplan_N"], bootstrap=0).to_dict()["holdout"] is None


def test_holdout_of_a_method_that_predicts_no_loss_is_a_note():
    g = load_run_groups(PORIAN, group_by="hparams", where='hparams == "tuned"')
    rep = fit(g["hparams=tuned"], ["approach2"], bootstrap=0, holdout=3, holdout_by="size")
    (row,) = rep.holdout_table()
    assert row["mean_abs_rel_error"] is None and row["note"] == "approach2 predicts no loss; no extrapolation check"
    assert row["runs"] > 3  # every run of the 3 largest sizes (several budgets each)


# ------------------------------------------------------------------ real data: Porian et al. 2024
@pytest.fixture(scope="module")
def porian():
    g = load_run_groups(PORIAN, group_by="hparams,warmup,decay")
    return fit_groups(g, ["approach2"], bootstrap=100)


def test_porian_conditions_give_their_own_exponents(porian):
    # Kaplan's setup (long warmup, schedule not matched to the run, untuned hyper-parameters) gives a larger
    # exponent than the corrected setup, whose exponent is Chinchilla-like (Porian et al. 2024, Fig. 1)
    a = {r["keys"]["hparams"]: r for r in porian.comparison()}
    assert porian.groups == ["hparams=base,warmup=long,decay=kaplan", "hparams=tuned,warmup=short,decay=const"]
    assert a["base"]["exponents"]["a"] > 0.65  # scaleplan: 0.70-0.78 (depending on which IsoFLOP vertices count)
    assert 0.46 < a["tuned"]["exponents"]["a"] < 0.56  # scaleplan: 0.50-0.51
    assert a["tuned"]["ci95"]["a"][1] < a["base"]["ci95"]["a"][0]  # separated beyond their 95% intervals
    assert porian.at_flops == pytest.approx(2.56e19)


def test_grouped_views_and_report(porian, tmp_path):
    from rich.console import Console

    from scaling_planner.render.report import plots, write_grouped_fit_report
    from scaling_planner.render.terminal import grouped_fit_view

    con = Console(width=160, record=True)
    con.print(grouped_fit_view(porian))
    text = con.export_text()
    a = porian.get("hparams=base,warmup=long,decay=kaplan").get("approach2").params["a"]
    assert "hparams, warmup, decay" in text and "base, long, kaplan" in text and f"{a:.3f}" in text
    assert "largest compute across all groups" in text
    fig = plots.plot_groups(porian, "approach2")
    axn = fig.axes[0]
    labels = [ln.get_label() for ln in axn.get_lines()]
    assert "base, long, kaplan" in labels and "tuned, short, const" in labels  # one N_opt(C) curve per group
    out = write_grouped_fit_report(porian, tmp_path / "r.html", command="scaleplan fit x --group-by hparams")
    html = out.read_text()
    assert "Comparison of the groups" in html and html.count("<img") == 1
    assert "hparams=tuned,warmup=short,decay=const: fitted parameters" in html


# ------------------------------------------------------------------ CLI
def test_cli_group_by_json_and_one_law_per_group(cli, tmp_path, two_datasets):
    save = tmp_path / "law.json"
    code, out, err = cli("fit", two_datasets, "--group-by", "dataset", "--method", "approach3", "--bootstrap", "0",
                         "--holdout", "1", "--holdout-by", "size", "--json", "--save", save)
    assert code == 0, err
    d = json.loads(out)
    assert list(d["groups"]) == ["dataset=c4", "dataset=rpj"]
    assert d["groups"]["dataset=c4"]["fits"][0]["holdout"]["by"] == "size"
    assert d["holdout"]["by"] == "size"
    a = {r["group"]: r["exponents"]["a"] for r in d["comparison"]}
    assert a["dataset=c4"] == pytest.approx(_a(LAWS["c4"]), abs=0.01)
    assert a["dataset=rpj"] == pytest.approx(_a(LAWS["rpj"]), abs=0.01)
    assert not save.exists()
    laws = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("law.*.json")}
    assert set(laws) == {"law.dataset-c4.json", "law.dataset-rpj.json"}
    assert laws["law.dataset-rpj.json"]["params"]["beta"] == pytest.approx(LAWS["rpj"]["beta"], abs=0.01)
    # nothing is overwritten without --force, and the refusal comes before any file is written
    (tmp_path / "law.dataset-c4.json").unlink()
    before = (tmp_path / "law.dataset-rpj.json").read_text()
    code, out, err = cli("fit", two_datasets, "--group-by", "dataset", "--method", "approach3", "--bootstrap", "0",
                         "--save", save)
    assert code == 2 and "law.dataset-rpj.json: exists; pass --force" in err
    assert not (tmp_path / "law.dataset-c4.json").exists()
    assert (tmp_path / "law.dataset-rpj.json").read_text() == before
    # one group selected: the law goes to the path itself
    code, out, err = cli("fit", two_datasets, "--where", "dataset == 'c4'", "--group-by", "dataset", "--method",
                         "approach3", "--bootstrap", "0", "--save", tmp_path / "c4.json")
    assert code == 0, err
    assert json.loads((tmp_path / "c4.json").read_text())["fit"]["options"]["group"] == "dataset=c4"
    assert "comparison of the groups" in out and "saved law to" in out


def test_cli_where_alone_keeps_the_single_fit_json(cli, two_datasets):
    code, out, err = cli("fit", two_datasets, "--where", 'dataset == "rpj"', "--method", "approach3",
                         "--bootstrap", "0", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert "fits" in d and "groups" not in d
    assert d["input"]["rows"] == 36 and d["options"]["where"] == 'dataset == "rpj"'
    assert d["input"]["derived"][0] == 'rows where dataset == "rpj": 36 of 72'
    assert d["fits"][0]["params"]["alpha"] == pytest.approx(LAWS["rpj"]["alpha"], abs=0.01)


def test_cli_holdout_table_in_the_terminal(cli, two_datasets):
    code, out, err = cli("fit", PORIAN, "--where", 'hparams == "tuned"', "--method", "approach3,approach2",
                         "--bootstrap", "0", "--holdout", "2", "--holdout-by", "size")
    assert code == 0, err
    assert "holdout: refit without every run of the 2 largest model size(s)" in out
    assert "approach2 predicts no loss" in out
