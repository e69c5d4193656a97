"""Reports and figures: expected artists, self-contained HTML, escaping, Markdown links."""

import re

import numpy as np
import pytest

from scaling_planner.fitting import fit, fit_method
from scaling_planner.runs import from_arrays

from .test_fitting import chinchilla_loss, isoflop_grid


@pytest.fixture(scope="module")
def synthetic_report():
    rows = isoflop_grid(np.geomspace(1e18, 1e21, 5), noise=0.002)
    runs = np.array([f"<script>alert(1)</script>{i}" for i in range(len(rows))])
    t = from_arrays(run=runs, N=rows[:, 0], D=rows[:, 1], budget=rows[:, 2], loss=rows[:, 3], source="synthetic.csv")
    return fit(t, ["kaplan_N", "kaplan_C", "approach2", "approach3"], bootstrap=50, holdout=2)


def test_figure_functions_have_expected_artists(synthetic_report):
    from scaling_planner.report import plots

    a3 = synthetic_report.get("approach3")
    fig = plots.plot_parametric(a3)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "FLOPs" in ax.get_xlabel()
    assert len(ax.collections) >= 2  # runs scatter + bootstrap band
    assert any("compute-optimal" in (ln.get_label() or "") for ln in ax.get_lines())
    fig = plots.plot_isoflop(synthetic_report.get("approach2"))
    assert len(fig.axes[0].get_lines()) == 5  # one parabola per budget
    fig = plots.plot_single([synthetic_report.get("kaplan_N"), synthetic_report.get("kaplan_C")])
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "parameters N"
    fig = plots.plot_memory_bars(["a", "b"], [{"weights": 1, "optimizer": 2}, {"weights": 1}], 80)
    assert len(fig.axes[0].patches) == 2 * 7


def test_approach1_envelope_figure():
    from scaling_planner.report import plots

    rows = []
    for N in np.geomspace(5e7, 5e9, 6):
        for horizon in (2e9, 8e9, 32e9):
            for D in np.geomspace(horizon / 16, horizon, 8):
                rows.append((f"{N:.3g}-{horizon:g}", N, D, chinchilla_loss(N, D)))
    run, N, D, L = zip(*rows)
    r = fit_method("approach1", from_arrays(run=np.array(run), N=N, D=D, loss=L), bootstrap=20)
    fig = plots.plot_envelope(r)
    assert any("envelope" in (ln.get_label() or "") for ln in fig.axes[0].get_lines())


def test_html_report_self_contained_and_escaped(synthetic_report, tmp_path):
    from scaling_planner.report.build import fit_report

    out = tmp_path / "report.html"
    fit_report(synthetic_report, out, command="scaleplan fit synthetic.csv --report report.html")
    html = out.read_text()
    assert html.count("<img src=\"data:image/png;base64,") >= 3
    assert not re.search(r"(src|href)=[\"']https?://", html)
    assert "http://" not in html and "https://" not in html
    # user text never lands unescaped (run names go into holdout tables / warnings when present)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "scaleplan fit synthetic.csv" in html
    for section in ("Summary", "Inputs", "Figures", "Assumptions", "Reproduce"):
        assert f"<h2>{section}</h2>" in html
    with pytest.raises(Exception, match="--force"):
        fit_report(synthetic_report, out)


def test_html_escapes_run_names(tmp_path):
    from scaling_planner.report.build import Report, Table, write

    rep = Report(title="<script>alert(1)</script>", summary=[("run", "<script>alert(1)</script>")],
                 tables=[Table("t", ["run"], [["<script>alert(1)</script>"]])], command="x")
    out = write(rep, tmp_path / "x.html")
    html = out.read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = write(rep, tmp_path / "x.md").read_text()
    assert "<script>" not in md


def test_markdown_report_links_resolve(synthetic_report, tmp_path):
    from scaling_planner.report.build import fit_report

    out = tmp_path / "r.md"
    fit_report(synthetic_report, out)
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 3
    for link in links:
        assert (out.parent / link).is_file()


def test_cli_reports(cli, tmp_path):
    plan = tmp_path / "plan.html"
    code, out, err = cli("budget", "--flops", "1e23", "--gpu", "a100-80", "--report", plan)
    assert code == 0, err
    assert plan.read_text().count("data:image/png;base64,") == 2
    mem = tmp_path / "mem.md"
    code, out, err = cli("memory", "--model", "llama-3-8b", "--gpu", "a100-80", "--report", mem)
    assert code == 0, err
    assert (tmp_path / "mem_files" / "memory.png").is_file()
    code, out, err = cli("memory", "--model", "llama-3-8b", "--report", tmp_path / "x.pdf")
    assert code == 2 and ".html or .md" in err
    code, out, err = cli("memory", "--model", "llama-3-8b", "--report", mem)
    assert code == 2 and "--force" in err


def test_frontier_and_time_cost_figures(synthetic_report):
    from scaling_planner.laws import load_law
    from scaling_planner.report import plots

    laws = [load_law(n) for n in ("kaplan2020", "chinchilla-approach1", "epoch2024")]
    fig = plots.plot_frontier([synthetic_report.get("approach3"), synthetic_report.get("approach2")], laws,
                              target_flops=1e23)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert sum("your fit" in lb for lb in labels) == 2 and any("epoch2024" in lb for lb in labels)
    assert any("target" in lb for lb in labels)
    assert fig.axes[0].get_yscale() == "log" and "N_opt" in fig.axes[0].get_ylabel()
    fig = plots.plot_time_cost([64, 128, 256], [40.0, 20.5, 10.6], [1e5, 1.02e5, 1.05e5], chosen=128)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "number of GPUs"
