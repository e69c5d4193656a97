"""Reports and figures: expected artists, self-contained HTML, escaping, Markdown links."""

import re
from pathlib import Path

import numpy as np
import pytest

from scaling_planner.fitting import fit, fit_method
from scaling_planner.io.runlog import from_arrays

from .test_fitting import chinchilla_loss, isoflop_grid


@pytest.fixture(scope="module")
def synthetic_report():
    rows = isoflop_grid(np.geomspace(1e18, 1e21, 5), noise=0.002)
    runs = np.array([f"<script>alert(1)</script>{i}" for i in range(len(rows))])
    t = from_arrays(run=runs, N=rows[:, 0], D=rows[:, 1], budget=rows[:, 2], loss=rows[:, 3], source="synthetic.csv")
    return fit(t, ["kaplan_N", "kaplan_C", "approach2", "approach3"], bootstrap=50, holdout=2)


def test_figure_functions_have_expected_artists(synthetic_report):
    from scaling_planner.render.report import plots

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
    assert len(fig.axes[0].patches) == 2 * len(plots.MEM_KEYS)  # one bar per component (8 with fp8_weights)


def test_approach1_envelope_figure():
    from scaling_planner.render.report import plots

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
    from scaling_planner.render.report import write_fit_report as fit_report

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
    from scaling_planner.render.report.document import Report, Table, write

    rep = Report(title="<script>alert(1)</script>", summary=[("run", "<script>alert(1)</script>")],
                 tables=[Table("t", ["run"], [["<script>alert(1)</script>"]])], command="x")
    out = write(rep, tmp_path / "x.html")
    html = out.read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = write(rep, tmp_path / "x.md").read_text()
    assert "<script>" not in md


def test_markdown_report_links_resolve(synthetic_report, tmp_path):
    from scaling_planner.render.report import write_fit_report as fit_report

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
    from scaling_planner.io.law_file import load_law
    from scaling_planner.render.report import plots

    laws = [load_law(n) for n in ("kaplan2020", "chinchilla-approach1", "epoch2024")]
    fig = plots.plot_frontier([synthetic_report.get("approach3"), synthetic_report.get("approach2")], laws,
                              target_flops=1e23)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert sum("your fit" in lb for lb in labels) == 2 and any("epoch2024" in lb for lb in labels)
    assert any("target" in lb for lb in labels)
    assert fig.axes[0].get_yscale() == "log" and "N_opt" in fig.axes[0].get_ylabel()
    fig = plots.plot_time_cost([64, 128, 256], [40.0, 20.5, 10.6], [1e5, 1.02e5, 1.05e5], chosen=128)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "number of GPUs"


# ------------------------------------------------------------------------------------------ backend (notebooks)
def _run_python(code: str) -> str:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_importing_plots_leaves_the_backend_alone():
    """Only the CLI picks a backend: with MPLBACKEND unset, importing and using the plots module neither resolves
    nor changes matplotlib's backend, and never imports pyplot; figures still render to PNG."""
    import json

    probe = """
import io, json, sys, matplotlib
import scaling_planner.render.report.plots as plots
fig = plots.plot_time_cost([8, 16, 32], [4.0, 2.1, 1.1], [1e3, 1.1e3, 1.2e3], chosen=16)
buf = io.BytesIO()
fig.savefig(buf, format="png")
get = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)
print(json.dumps({"unresolved": get() is None, "pyplot": "matplotlib.pyplot" in sys.modules,
                  "png": buf.getvalue()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"}))
"""
    r = json.loads(_run_python(probe))
    assert r == {"unresolved": True, "pyplot": False, "png": True}
    chosen = """
import matplotlib
matplotlib.use("svg")  # whatever the user (or Jupyter) chose must survive
before = matplotlib.get_backend()
import io
import scaling_planner.render.report.plots as plots
plots.plot_memory_bars(["a"], [{"weights": 1.0}], 80).savefig(io.BytesIO(), format="png")
print(before + " " + matplotlib.get_backend())
"""
    before, after = _run_python(chosen).split()
    assert before == after == "svg"


def test_cli_renders_headless(cli, tmp_path):
    import matplotlib

    out = tmp_path / "mem.html"
    code, _, err = cli("memory", "--model", "llama-3-8b", "--gpu", "a100-80", "--report", out)
    assert code == 0, err
    assert matplotlib.get_backend().lower() == "agg"
    assert out.read_text().count("data:image/png;base64,") == 1


# ------------------------------------------------------------------------------------------ layout of the figures
def _draw(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlaps(a, b, tol=1.0):
    return a.x0 < b.x1 - tol and b.x0 < a.x1 - tol and a.y0 < b.y1 - tol and b.y0 < a.y1 - tol


def _drawn_tick_labels(axis):
    """The tick labels matplotlib draws: non-empty, at ticks inside the view interval."""
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for locs, ticks in ((axis.get_majorticklocs(), axis.get_major_ticks), (axis.get_minorticklocs(),
                                                                          axis.get_minor_ticks)):
        for loc, tick in zip(locs, ticks(len(locs))):
            if lo * (1 - 1e-9) <= loc <= hi * (1 + 1e-9) and tick.label1.get_visible() and tick.label1.get_text():
                out.append(tick.label1)
    return out


def _layout_problems(fig):
    """Overlapping tick labels, legends over an axes or over each other, log axes with fewer than 3 labels, unlabelled
    lines, text cut off at the figure edge."""
    r = _draw(fig)
    probs = []
    fbox = fig.bbox
    legends = [leg for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if leg is not None]
    for sf in getattr(fig, "subfigs", []):
        legends += list(sf.legends)
    lboxes = [leg.get_window_extent(r) for leg in legends]
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        abox = ax.get_window_extent(r)
        for lb in lboxes:
            if _overlaps(lb, abox):
                probs.append(f"legend over axes {ax.get_title()!r}")
        for axis in (ax.xaxis, ax.yaxis):
            labels = _drawn_tick_labels(axis)
            boxes = [t.get_window_extent(r) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    if _overlaps(boxes[i], boxes[j]):
                        probs.append(f"tick labels {labels[i].get_text()!r} and {labels[j].get_text()!r} overlap")
                b = boxes[i]
                if b.x0 < fbox.x0 - 1 or b.x1 > fbox.x1 + 1 or b.y0 < fbox.y0 - 1 or b.y1 > fbox.y1 + 1:
                    probs.append(f"tick label {labels[i].get_text()!r} cut off")
            if axis.get_scale() == "log" and 0 < len(labels) < 3:  # 0: labels hidden (a twin axis)
                probs.append(f"log axis {axis.get_label_text()!r} has {len(labels)} tick labels")
        for ln in ax.get_lines():
            if ln.get_visible() and len(ln.get_xdata()) and str(ln.get_label()).startswith("_"):
                probs.append(f"unlabelled line in {ax.get_title()!r}")
    for i in range(len(lboxes)):
        for j in range(i + 1, len(lboxes)):
            if _overlaps(lboxes[i], lboxes[j]):
                probs.append("legends overlap")
    for b in lboxes:
        if b.x0 < fbox.x0 - 1 or b.x1 > fbox.x1 + 1 or b.y0 < fbox.y0 - 1:
            probs.append("legend cut off")
    return probs


def test_figures_read_well(synthetic_report):
    from scaling_planner.io.law_file import load_law
    from scaling_planner.render.report import plots

    laws = [load_law(n) for n in ("kaplan2020", "chinchilla-approach1", "epoch2024")]
    a2, a3 = synthetic_report.get("approach2"), synthetic_report.get("approach3")
    figs = {"parametric": plots.plot_parametric(a3), "isoflop": plots.plot_isoflop(a2),
            "single": plots.plot_single([synthetic_report.get("kaplan_N"), synthetic_report.get("kaplan_C")]),
            "frontier": plots.plot_frontier([a3, a2], laws, target_flops=1e23),
            "memory": plots.plot_memory_bars(["this config", "ZeRO-3 over 8 GPUs", "TP=2 on 2 GPUs"],
                                             [{"weights": 15, "optimizer": 60, "activations": 10}] * 3, 80),
            "time": plots.plot_time_cost([78, 156, 312, 624, 1248], [120.0, 61.0, 31.0, 16.0, 8.2],
                                         [4.33e5, 4.37e5, 4.39e5, 4.40e5, 4.41e5], chosen=312)}
    for name, fig in figs.items():
        assert _layout_problems(fig) == [], name
        assert fig.notes == [], name  # healthy fits: nothing left out
    # each fitted method its own colour, different from every published law's
    lines = figs["frontier"].axes[0].get_lines()
    fit_colors = {ln.get_label(): ln.get_color() for ln in lines if ln.get_label().startswith("your fit")}
    law_colors = {ln.get_color() for ln in lines if not ln.get_label().startswith(("your fit", "target"))}
    assert len(fit_colors) == 2 and len(set(fit_colors.values())) == 2 and not set(fit_colors.values()) & law_colors


def test_log_ticks_are_readable():
    from scaling_planner.render.report.plots import _LogTicks, fmt_count, fmt_sci

    loc = _LogTicks(6)
    assert list(loc.tick_values(1e18, 1e26)) == [1e18, 1e20, 1e22, 1e24, 1e26]  # every other decade
    assert list(loc.tick_values(7, 130)) == [10, 20, 50, 100]  # not a lone "1e1"/"1e2"
    t = loc.tick_values(2.2, 3.3)  # under a decade: round numbers
    assert 4 <= len(t) <= 6 and all(abs(v * 20 - round(v * 20)) < 1e-9 for v in t)
    assert fmt_count(7e10) == "70B" and fmt_count(1.4e12) == "1.4T" and fmt_count(2e7) == "20M"
    assert fmt_sci(1e21) == "$10^{21}$" and fmt_sci(6e18) == r"$6\times10^{18}$" and fmt_sci(2.5) == "2.5"


# ------------------------------------------------------------------------------------------ degenerate fits
def _rising_rows():
    """An IsoFLOP-like grid where loss RISES slowly with N: the fits come out degenerate (negative exponents)."""
    rng = np.random.default_rng(0)
    rows = []
    for C in (1e18, 3e18, 1e19, 3e19):
        for N in np.geomspace(2e7, 5e8, 5):
            rows.append((N, C / (6 * N), 3.0 + 0.01 * np.log(N / 1e7) + rng.normal(0, 0.001)))
    return np.array(rows)


def _degenerate_results():
    from scaling_planner.fitting.result import FitResult

    rng = np.random.default_rng(1)
    N, D, L = _rising_rows().T
    C = 6 * N * D
    p3 = {"E": 0.396, "A": 1.24, "B": 1.22, "alpha": -0.0069, "beta": 9.4e-5}  # what approach3 finds on these rows
    s3 = {k: v * (1 + 0.02 * rng.normal(size=60)) for k, v in p3.items()}  # alpha < 0 in every replicate
    a3 = FitResult("approach3", p3, n_points=len(N), converged=False, samples=s3, derived={"at_flops": C.max()},
                   plot_data={"N": N, "C": C, "loss": L})
    kd = FitResult("kaplan_D", {"D_c": float("inf"), "alpha_D": 0.0015}, n_points=len(D), converged=False,
                   samples={"D_c": np.full(60, np.inf), "alpha_D": np.full(60, 0.0015)},
                   plot_data={"var": "D", "x": D, "loss": L, "x_all": D, "loss_all": L})
    return a3, kd


def test_degenerate_fits_do_not_crash_the_figures():
    from scaling_planner.io.law_file import load_law
    from scaling_planner.render.report import plots

    a3, kd = _degenerate_results()
    fig = plots.plot_parametric(a3)  # the frontier is complex-valued here: it used to raise TypeError
    ax = fig.axes[0]
    assert not any("compute-optimal" in str(ln.get_label()) for ln in ax.get_lines())
    assert any("compute-optimal L(C): not drawn" in n for n in fig.notes)
    assert sum(str(ln.get_label()).startswith("fit at N") for ln in ax.get_lines()) == 3  # these are finite
    assert plots.to_png(fig)[:4] == b"\x89PNG"
    fig = plots.plot_single([kd])
    assert any("L(D) fit: not drawn" in n for n in fig.notes)
    assert not any(str(ln.get_label()).startswith("fit") for ln in fig.axes[0].get_lines())
    plots.to_png(fig)
    laws = [load_law(n) for n in ("kaplan2020", "epoch2024")]
    fig = plots.plot_frontier([a3], laws, target_flops=1e21)
    assert not any("your fit" in str(ln.get_label()) for ln in fig.axes[0].get_lines())
    assert any("your fit (approach3)" in n and "not drawn" in n for n in fig.notes)
    assert any("epoch2024" in str(ln.get_label()) for ln in fig.axes[0].get_lines())  # the rest still drawn
    # the note is shown in the figure (above its legend)
    _draw(fig)
    assert "not drawn" in fig.legends[0].get_title().get_text()
    plots.to_png(fig)


def test_band_skips_degenerate_replicates():
    """Some replicates degenerate (complex frontier): the band comes from the rest, and the figure says so."""
    from scaling_planner.render.report import plots

    good, _ = _degenerate_results()
    from dataclasses import replace

    p = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    rows = isoflop_grid(np.geomspace(1e18, 1e20, 3))
    s = {k: np.full(50, v) * (1 + 0.01 * np.random.default_rng(2).normal(size=50)) for k, v in p.items()}
    s["alpha"][:10] = -0.01  # 20% of the replicates
    r = replace(good, params=p, samples=s, converged=True,
                plot_data={"N": rows[:, 0], "C": 6 * rows[:, 0] * rows[:, 1], "loss": rows[:, 3]})
    fig = plots.plot_parametric(r)
    assert any(c.get_label() == "95% bootstrap band" for c in fig.axes[0].collections)
    assert any("from the 40 of 50 replicates" in n for n in fig.notes)


def test_degenerate_notes_reach_the_report(tmp_path):
    from scaling_planner.render.report import plots
    from scaling_planner.render.report.document import Figure, Report, write

    a3, _ = _degenerate_results()
    rep = Report(title="t", figures=[Figure(plots.plot_parametric(a3), "caption.", "alt", "approach3")], command="x")
    html = write(rep, tmp_path / "r.html").read_text()
    assert "compute-optimal L(C): not drawn" in html and "<h2>Warnings</h2>" in html
    rep = Report(title="t", figures=[Figure(plots.plot_parametric(a3), "caption.", "alt", "approach3")], command="x")
    md = write(rep, tmp_path / "r.md").read_text()
    assert "## Warnings" in md and "compute-optimal L(C): not drawn" in md
    assert (tmp_path / "r_files" / "approach3.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("ext", ["html", "md"])
def test_cli_fit_report_on_rising_loss(cli, tmp_path, ext):
    """`scaleplan fit --report` on data where loss rises with N used to crash (TypeError, complex band)."""
    csv = tmp_path / "rising.csv"
    csv.write_text("N,D,loss\n" + "".join(f"{n:g},{d:g},{lo:.5f}\n" for n, d, lo in _rising_rows()))
    out = tmp_path / f"r.{ext}"
    code, _, err = cli("fit", csv, "--bootstrap", "10", "--method", "approach3,kaplan_C,kaplan_D", "--report", out)
    assert code == 0, err
    text = out.read_text()
    assert "Warnings" in text and "rising.csv" in text


# ------------------------------------------------------------------------------------------ report paths
def _tiny_report():
    from scaling_planner.render.report import plots
    from scaling_planner.render.report.document import Figure, Report

    fig = plots.plot_memory_bars(["a"], [{"weights": 1.0}], 80)
    return Report(title="t", figures=[Figure(fig, "c", "alt", "memory")], command="x")


def test_markdown_report_does_not_overwrite_figures(tmp_path):
    from scaling_planner.errors import ScalePlanError
    from scaling_planner.render.report import check_report_path
    from scaling_planner.render.report.document import write

    out, folder = tmp_path / "r.md", tmp_path / "r_files"
    folder.mkdir()
    (folder / "memory.png").write_bytes(b"keep")
    with pytest.raises(ScalePlanError, match=r"r_files.*--force"):
        write(_tiny_report(), out)
    assert (folder / "memory.png").read_bytes() == b"keep" and not out.exists()
    with pytest.raises(ScalePlanError, match=r"r_files.*--force"):
        check_report_path(out, force=False)
    check_report_path(out, force=True)
    check_report_path(out)  # a caller that does not say: existence left to the writer
    write(_tiny_report(), out, force=True)
    assert (folder / "memory.png").read_bytes()[:4] == b"\x89PNG" and out.is_file()
    # an empty figure folder left behind counts too: its files would be written without asking
    (folder / "memory.png").unlink()
    out.unlink()
    with pytest.raises(ScalePlanError, match="--force"):
        write(_tiny_report(), out)


def test_cli_markdown_report_keeps_existing_figures(cli, tmp_path):
    out, folder = tmp_path / "mem.md", tmp_path / "mem_files"
    folder.mkdir()
    (folder / "memory.png").write_bytes(b"keep")
    code, _, err = cli("memory", "--model", "llama-3-8b", "--report", out)
    assert code == 2 and "--force" in err and "mem_files" in err and len(err.strip().splitlines()) == 1
    assert (folder / "memory.png").read_bytes() == b"keep" and not out.exists()
    code, _, err = cli("memory", "--model", "llama-3-8b", "--report", out, "--force")
    assert code == 0, err
    assert (folder / "memory.png").read_bytes()[:4] == b"\x89PNG"


def test_report_path_checks(tmp_path):
    import os

    from scaling_planner.errors import ScalePlanError
    from scaling_planner.render.report import check_report_path

    with pytest.raises(ScalePlanError) as e:
        check_report_path(Path("/nonexistent/x.html"))
    assert str(e.value) == "--report /nonexistent/x.html: directory /nonexistent does not exist"
    with pytest.raises(ScalePlanError, match=r"\.html or \.md"):
        check_report_path(tmp_path / "x.pdf")
    with pytest.raises(ScalePlanError, match="is a directory"):
        (tmp_path / "d.html").mkdir()
        check_report_path(tmp_path / "d.html")
    (tmp_path / "f.md").write_text("")
    with pytest.raises(ScalePlanError, match="pass --force"):
        check_report_path(tmp_path / "f.md", force=False)
    (tmp_path / "g_files").write_text("")
    with pytest.raises(ScalePlanError, match="not a directory"):
        check_report_path(tmp_path / "g.md", force=True)
    for ok in ("a.html", "a.HTM", "a.md"):
        check_report_path(tmp_path / ok, force=False)
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(ScalePlanError, match="not writable"):
                check_report_path(ro / "x.html")
        finally:
            ro.chmod(0o755)


def test_cli_report_path_errors(cli, tmp_path):
    code, _, err = cli("memory", "--model", "llama-3-8b", "--report", "/nonexistent/x.html")
    assert code == 2 and "/nonexistent" in err and "does not exist" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli("budget", "--flops", "1e23", "--report", tmp_path / "plan.txt")
    assert code == 2 and ".html or .md" in err


def test_plan_report_with_a_fixed_model_and_tokens_moe(cli, tmp_path):
    # N fixed by a shape and D by --tokens: the law's samples spread only the loss (this used to crash the report);
    # MoE plans list each layout's EP
    rep = tmp_path / "moe.md"
    code, out, err = cli("budget", "--model", "mixtral-8x7b", "--gpu", "h100", "--tokens", "1e11", "--report", rep)
    assert code == 0, err
    text = rep.read_text()
    assert re.search(r"95% interval \(law samples\) \| loss \d\.\d+–\d\.\d+ \|", text)
    assert "| TP | PP | DP | EP | ZeRO |" in text
