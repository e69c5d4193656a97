"""Figures for reports (matplotlib, Agg backend, one style). Each function returns a ``matplotlib.figure.Figure``.

Axes carry units; captions (in the reports) state the parameter-counting convention and the loss units.
Bands are 95% bootstrap ranges from the fit's replicates.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

STYLE = {"figure.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "legend.frameon": False, "legend.fontsize": 8}
FIT_COLOR = "#c0392b"
DATA_COLOR = "#34495e"
LAW_COLORS = {"kaplan2020": "#8e44ad", "chinchilla-approach1": "#27ae60", "chinchilla-approach2": "#16a085",
              "chinchilla-approach3": "#d35400", "epoch2024": "#2980b9", "deepseek2024": "#7f8c8d"}
MEM_COLORS = {"weights": "#2c3e50", "gradients": "#8e44ad", "optimizer": "#c0392b", "activations": "#e67e22",
              "logits": "#f1c40f", "buffers": "#16a085", "overhead": "#95a5a6"}
MEM_KEYS = ("weights", "gradients", "optimizer", "activations", "logits", "buffers", "overhead")


def _fig(ncols=1, w=5.2, h=3.6) -> tuple[Figure, np.ndarray]:
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(w * ncols, h), squeeze=False)
    for ax in axes.flat:
        ax.grid(True, which="major", alpha=0.25)
    return fig, axes[0]


def _log_label(v, _pos=None) -> str:
    if v <= 0:
        return ""
    e = np.floor(np.log10(v) + 1e-9)
    m = v / 10**e
    if abs(m - 1) < 1e-6:
        return f"1e{int(e)}"
    return f"{m:g}e{int(e)}"


def _finish(fig) -> None:
    """Plain-text tick labels on log axes (mathtext parsing is slow), then tight layout."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax in fig.axes:
        for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(),
                                                                              ax.get_ylim())):
            if scale == "log":
                axis.set_major_formatter(FuncFormatter(_log_label))
                lo, hi = sorted(lim)
                short = lo > 0 and np.log10(hi / lo) < 1.2  # less than ~a decade: label the minor ticks too
                axis.set_minor_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}") if short else NullFormatter())
                if short:
                    axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}"))
    fig.tight_layout()


def _band(ax, x, samples_fn, samples, color, label="95% bootstrap band"):
    """Shade the 2.5–97.5 percentile of curves evaluated for each bootstrap replicate."""
    if not samples:
        return
    keys = list(samples)
    n = len(samples[keys[0]])
    if n < 10:
        return
    idx = np.linspace(0, n - 1, min(n, 300)).astype(int)
    curves = []
    for i in idx:
        try:
            y = samples_fn({k: float(samples[k][i]) for k in keys}, x)
        except (FloatingPointError, ZeroDivisionError, ValueError):
            continue
        if np.all(np.isfinite(y)):
            curves.append(y)
    if len(curves) < 10:
        return
    lo, hi = np.percentile(np.array(curves), [2.5, 97.5], axis=0)
    ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0, label=label)


def _extrapolation(ax, xmax, xend):
    if xend > xmax:
        ax.axvspan(xmax, xend, color="#bdc3c7", alpha=0.25, lw=0, label="extrapolation")


# ---------------------------------------------------------------------------------------------- fits
def plot_parametric(result, table=None) -> Figure:
    """Approach 3: points coloured by model size, the compute-optimal frontier L_opt(C) with its band, and the
    fitted L(N, C) curves for a few sizes; residuals vs compute on the right."""
    p = result.params
    pdata = result.plot_data
    N, C, L = np.asarray(pdata["N"]), np.asarray(pdata["C"]), np.asarray(pdata["loss"])
    fig, (ax, axr) = _fig(2)
    sc = ax.scatter(C, L, c=np.log10(N), s=12, cmap="viridis", alpha=0.85, label="runs")
    cb = fig.colorbar(sc, ax=ax, pad=0.01)
    cb.set_label("log10 N (params)")
    at = result.derived.get("at_flops", C.max())
    x = np.geomspace(C.min() / 2, max(C.max(), at) * 3, 200)

    def frontier(q, c):
        al, be, A, B, E = q["alpha"], q["beta"], q["A"], q["B"], q["E"]
        G = (al * A / (be * B)) ** (1 / (al + be))
        n = G * (c / 6) ** (be / (al + be))
        d = (c / 6) ** (al / (al + be)) / G
        return E + A / n**al + B / d**be

    _band(ax, x, frontier, result.samples, FIT_COLOR)
    ax.plot(x, frontier(p, x), color=FIT_COLOR, lw=2, label="compute-optimal L(C) (fit)")
    for n in np.quantile(np.unique(N), [0.1, 0.5, 0.9]):
        ax.plot(x, p["E"] + p["A"] / n ** p["alpha"] + p["B"] / (x / (6 * n)) ** p["beta"], color="#7f8c8d",
                lw=0.8, ls="--")
    _extrapolation(ax, C.max(), x.max())
    ax.axhline(p["E"], color="#7f8c8d", lw=0.8, ls=":", label=f"E = {p['E']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs, 6ND)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("Approach 3: L = E + A/N^α + B/D^β")
    ax.legend(loc="best")
    pred = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / (C / (6 * N)) ** p["beta"]
    axr.scatter(C, np.log(pred) - np.log(L), s=10, color=DATA_COLOR)
    axr.axhline(0, color=FIT_COLOR, lw=1)
    axr.set_xscale("log")
    axr.set_xlabel("training compute C (FLOPs)")
    axr.set_ylabel("log residual  ln L̂ − ln L")
    axr.set_title("residuals vs compute")
    _mark_holdout(ax, result)
    _finish(fig)
    return fig


def _mark_holdout(ax, result):
    h = result.holdout or {}
    pts = h.get("points") or []
    if pts:
        C = [6 * q["N"] * q["D"] for q in pts]
        ax.scatter(C, [q["loss"] for q in pts], marker="x", color="black", s=40, zorder=5, label="held out")
        ax.scatter(C, [q["predicted"] for q in pts], marker="+", color=FIT_COLOR, s=60, zorder=5,
                   label="prediction (fit without them)")
        ax.legend(loc="best")


def plot_single(results) -> Figure:
    """Kaplan single-variable laws (one panel each): selected points, all points faded, the fitted power law with its
    95% bootstrap band and the extrapolation region."""
    results = results if isinstance(results, (list, tuple)) else [results]
    fig, axes = _fig(len(results), w=4.2)
    for ax, result in zip(axes, results):
        pd_ = result.plot_data
        var = pd_["var"]
        x, y = np.asarray(pd_["x"]), np.asarray(pd_["loss"])
        ax.scatter(pd_["x_all"], pd_["loss_all"], s=6, color="#bdc3c7", label="all points")
        ax.scatter(x, y, s=14, color=DATA_COLOR, label={"N": "best loss per size", "D": "best loss per token count",
                                                         "C": "compute frontier"}[var])
        xs = np.geomspace(x.min() / 2, x.max() * 10, 200)
        p = result.params

        def curve(q, xx, var=var):
            return q.get("E", 0.0) + (q[f"{var}_c"] / xx) ** q[f"alpha_{var}"]

        _band(ax, xs, curve, result.samples, FIT_COLOR)
        ax.plot(xs, curve(p, xs), color=FIT_COLOR, lw=2, label=f"fit: α_{var} = {p[f'alpha_{var}']:.3g}")
        _extrapolation(ax, x.max(), xs.max())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel({"N": "parameters N", "D": "training tokens D", "C": "training compute C (FLOPs)"}[var])
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(f"Kaplan L({var})")
        ax.legend(loc="best", fontsize=7)
    _finish(fig)
    return fig


def plot_isoflop(result) -> Figure:
    """Approach 2 (Chinchilla Fig. 3 style): loss vs N per budget with parabolas and vertices; N_opt vs C."""
    pd_ = result.plot_data
    N, L, B = np.asarray(pd_["N"]), np.asarray(pd_["loss"]), np.asarray(pd_["budgets"])
    verts = result.info["vertices"]
    used = {v["budget"] for v in verts}
    fig, (ax, ax2) = _fig(2)
    cmap = plt.get_cmap("plasma")
    budgets = sorted(used)
    for i, C in enumerate(budgets):
        m = B == C
        col = cmap(i / max(1, len(budgets) - 1) * 0.85)
        ax.scatter(N[m], L[m], s=14, color=col)
        x = np.log(N[m])
        c2, c1, c0 = np.polyfit(x, L[m], 2)
        xs = np.linspace(x.min(), x.max(), 100)
        ax.plot(np.exp(xs), c0 + c1 * xs + c2 * xs**2, color=col, lw=1, label=f"{C:.2g} FLOPs")
        v = next(v for v in verts if v["budget"] == C)
        ax.scatter([v["N_opt"]], [v["loss_opt"]], marker="v", color=col, edgecolor="black", s=40, zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("final loss (nats/token)")
    ax.set_title("IsoFLOP profiles (▼ = vertex)")
    if len(budgets) <= 12:
        ax.legend(fontsize=7, ncol=2, loc="best")
    else:
        ax.text(0.02, 0.02, f"{len(budgets)} budgets (colour: low → high compute)", transform=ax.transAxes,
                fontsize=7)
    Cv = np.array([v["budget"] for v in verts])
    Nv = np.array([v["N_opt"] for v in verts])
    p = result.params
    xs = np.geomspace(Cv.min() / 3, Cv.max() * 30, 100)
    _band(ax2, xs, lambda q, c: q["k_N"] * c ** q["a"], result.samples, FIT_COLOR)
    ax2.plot(xs, p["k_N"] * xs ** p["a"], color=FIT_COLOR, lw=2, label=f"N_opt ∝ C^{p['a']:.3f}")
    ax2.scatter(Cv, Nv, color=DATA_COLOR, s=20, zorder=3, label="vertices")
    _extrapolation(ax2, Cv.max(), xs.max())
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("compute C (FLOPs)")
    ax2.set_ylabel("optimal parameters N_opt")
    ax2.set_title("Approach 2: N_opt(C)")
    ax2.legend()
    _finish(fig)
    return fig


def plot_envelope(result) -> Figure:
    """Approach 1 (Chinchilla Fig. 2 style): learning curves vs compute, their lower envelope, and N_opt vs C."""
    pd_ = result.plot_data
    C, L, run, N = (np.asarray(pd_[k]) for k in ("C", "loss", "run", "N"))
    fig, (ax, ax2) = _fig(2)
    norm = matplotlib.colors.LogNorm(vmin=N.min(), vmax=N.max())
    cmap = plt.get_cmap("viridis")
    for r in np.unique(run)[:400]:
        m = run == r
        o = np.argsort(C[m])
        ax.plot(C[m][o], L[m][o], color=cmap(norm(np.median(N[m]))), lw=0.5, alpha=0.5)
    ax.plot(pd_["C_env"], pd_["L_env"], color=FIT_COLOR, lw=2, label="envelope (min over runs)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("training curves and their envelope")
    ax.legend()
    p = result.params
    Ce, Ne = np.asarray(pd_["C_env"]), np.asarray(pd_["N_env"])
    xs = np.geomspace(Ce.min(), Ce.max() * 30, 100)
    _band(ax2, xs, lambda q, c: q["k_N"] * c ** q["a"], result.samples, FIT_COLOR)
    ax2.scatter(Ce, Ne, s=6, color=DATA_COLOR, label="envelope N")
    ax2.plot(xs, p["k_N"] * xs ** p["a"], color=FIT_COLOR, lw=2, label=f"N_opt ∝ C^{p['a']:.3f}")
    _extrapolation(ax2, Ce.max(), xs.max())
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("compute C (FLOPs)")
    ax2.set_ylabel("optimal parameters N_opt")
    ax2.set_title("Approach 1: N_opt(C)")
    ax2.legend()
    _finish(fig)
    return fig


def plot_frontier(fits, laws, target_flops=None, c_range=None) -> Figure:
    """N_opt(C) and D_opt(C): the user's fits (with bands) against published laws; target budget marked."""
    fig, (axn, axd) = _fig(2)
    lo, hi = c_range or (1e18, 1e26)
    if target_flops:
        lo, hi = min(lo, target_flops / 10), max(hi, target_flops * 10)
    x = np.geomspace(lo, hi, 200)
    for law in laws:
        if not law.has_optimal:
            continue
        n, d = law.optimal(x)
        col = LAW_COLORS.get(law.name, "#7f8c8d")
        axn.plot(x, n, color=col, lw=1.2, ls="--", label=f"{law.name} (N: {law.conventions.get('N', '?').split()[0]})")
        axd.plot(x, d, color=col, lw=1.2, ls="--", label=law.name)
    for f in fits:
        law = f.to_law(f.method)
        if not law.has_optimal:
            continue
        n, d = law.optimal(x)
        if f.samples:
            from ..laws import ScalingLaw

            def nopt(q, c, law=law):
                return ScalingLaw.optimal(law.with_params({**law.params, **q}), c)[0]

            def dopt(q, c, law=law):
                return ScalingLaw.optimal(law.with_params({**law.params, **q}), c)[1]

            samples = {k: v for k, v in f.samples.items() if k in law.params}
            if law.form == "power":
                samples = {}
            _band(axn, x, nopt, samples, FIT_COLOR, label=None)
            _band(axd, x, dopt, samples, FIT_COLOR, label=None)
        axn.plot(x, n, color=FIT_COLOR, lw=2, label=f"your fit ({f.method})")
        axd.plot(x, d, color=FIT_COLOR, lw=2, label=f"your fit ({f.method})")
    for ax, what in ((axn, "optimal parameters N_opt"), (axd, "optimal tokens D_opt")):
        if target_flops:
            ax.axvline(target_flops, color="black", lw=1, ls=":", label=f"target {target_flops:.2g} FLOPs")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(what)
    axn.set_title("compute-optimal model size")
    axd.set_title("compute-optimal tokens")
    axn.legend(fontsize=7)
    _finish(fig)
    return fig


# ---------------------------------------------------------------------------------------------- memory / plan
def plot_memory_bars(labels, breakdowns_gib, limit_gib=None, title="per-GPU memory") -> Figure:
    """Stacked bars of the memory components (GiB) for several configurations, with the GPU's usable memory."""
    fig, (ax,) = _fig(1, w=max(5.0, 1.1 * len(labels) + 2.5), h=3.8)
    bottom = np.zeros(len(labels))
    for k in MEM_KEYS:
        vals = np.array([b.get(k, 0.0) for b in breakdowns_gib])
        ax.bar(range(len(labels)), vals, bottom=bottom, color=MEM_COLORS[k], label=k, width=0.6)
        bottom += vals
    if limit_gib:
        ax.axhline(limit_gib, color="black", lw=1.2, ls="--", label=f"usable {limit_gib:.0f} GiB")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("GiB per GPU (2^30 bytes)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _finish(fig)
    return fig


def plot_time_cost(gpu_counts, days, costs, chosen=None) -> Figure:
    """Wall-clock days and cost vs number of GPUs (best layout at each count)."""
    fig, (ax,) = _fig(1)
    ax.plot(gpu_counts, days, "o-", color=DATA_COLOR, label="days")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of GPUs")
    ax.set_ylabel("wall-clock days")
    if chosen:
        ax.axvline(chosen, color="black", ls=":", lw=1, label=f"chosen: {chosen} GPUs")
    if costs and all(c is not None for c in costs):
        ax2 = ax.twinx()
        ax2.plot(gpu_counts, np.array(costs) / 1e3, "s--", color=FIT_COLOR, label="cost (k$)")
        ax2.set_ylabel("cost (thousand USD)", color=FIT_COLOR)
        ax2.grid(False)
        ax2.legend(loc="upper center")
    ax.legend(loc="best")
    ax.set_title("time and cost vs GPUs")
    _finish(fig)
    return fig
