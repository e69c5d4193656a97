"""Figures for reports and notebooks. Each function returns a ``matplotlib.figure.Figure`` (a :class:`ReportFigure`).

Figures are built without pyplot, so importing or calling this module never selects or changes matplotlib's backend
(only the CLI picks one, Agg): they render to PNG off-screen whatever the backend, and in Jupyter a returned figure
shows itself as an image. Save one with ``fig.savefig(path)`` or get the bytes with :func:`to_png`.

Axes carry units; captions (in the reports) state the parameter-counting convention and the loss units. Bands are
95% bootstrap ranges from the fit's replicates. Legends sit outside the axes, below them. A curve or band whose values
are not finite real numbers (a degenerate fit: e.g. loss rising with N gives a negative exponent) is left out and the
figure says so, above its legend and in ``fig.notes`` (the reports add those notes to the caption and the warnings).
"""

from __future__ import annotations

import functools
import io
import textwrap

import matplotlib
import numpy as np
from matplotlib import ticker as mticker
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ... import laws

STYLE = {"figure.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "legend.frameon": False, "legend.fontsize": 8, "axes.titlesize": 10,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.labelsize": 9}
PNG_DPI = 120
FIT_COLOR = "#c0392b"
DATA_COLOR = "#34495e"
NOTE_COLOR = "#a04000"
LAW_COLORS = {"kaplan2020": "#8e44ad", "chinchilla-approach1": "#27ae60", "chinchilla-approach2": "#16a085",
              "chinchilla-approach3": "#7f8c8d", "epoch2024": "#2980b9", "deepseek2024": "#95a5a6"}
# the user's fits: one colour per method, none shared with the published laws above
METHOD_COLORS = {"approach3": "#c0392b", "approach2": "#e67e22", "approach1": "#6d4c41", "kaplan_ND": "#2c3e50"}
OTHER_FIT_COLORS = ("#b7950b", "#d81b60", "#1b5e20", "#000000")
FIT_MARKERS = ("o", "s", "^", "D")
MEM_COLORS = {"weights": "#2c3e50", "gradients": "#8e44ad", "optimizer": "#c0392b", "activations": "#e67e22",
              "logits": "#f1c40f", "buffers": "#16a085", "fp8_weights": "#2980b9", "overhead": "#95a5a6"}
MEM_KEYS = ("weights", "gradients", "optimizer", "activations", "logits", "buffers", "fp8_weights", "overhead")
_EVAL_ERRORS = (ArithmeticError, ValueError, TypeError, KeyError)


class ReportFigure(Figure):
    """A matplotlib Figure that needs no backend: it shows itself as a PNG in Jupyter (``_repr_png_``) and carries
    ``notes``, one line for each curve or band that was left out because its values were not finite."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []

    def _repr_png_(self) -> bytes:
        return to_png(self)


def to_png(fig, dpi: int = PNG_DPI) -> bytes:
    """PNG bytes of a figure, rendered off-screen (Agg) whatever matplotlib's backend is."""
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _styled(fn):
    """Build the figure under the report style (rc settings are read when artists are created)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _panels(n: int = 1, w: float = 5.0, h: float = 4.2, split: bool = False, width_ratios=None):
    """A figure of ``n`` side-by-side panels. With ``split`` each panel is its own subfigure, so each can have its own
    legend below it; otherwise the panels share one legend below them all (and line up).
    Returns (figure, containers, axes); a container is where that panel's legend and colour bar go."""
    fig = ReportFigure(figsize=(w * n, h), layout="constrained")
    if split and n > 1:
        subs = list(np.atleast_1d(fig.subfigures(1, n, width_ratios=width_ratios)))
        axs = [sf.add_subplot() for sf in subs]
    else:
        axs = list(np.atleast_1d(fig.subplots(1, n, width_ratios=width_ratios)))
        subs = [fig] * n
    axes = []
    for ax in axs:
        ax.grid(True, which="major", alpha=0.25)
        ax.grid(False, which="minor")
        axes.append(ax)
    return fig, subs, axes


# ---------------------------------------------------------------------------------------------- log-axis ticks
class _LogTicks(mticker.Locator):
    """Major ticks for a log axis that always give 3 to ``max_ticks`` labels: decades (every k-th on long spans),
    else 1-2-5 (or 1-3) multiples, else, within about a decade, evenly spaced round numbers."""

    def __init__(self, max_ticks: int = 6):
        self.max_ticks = max_ticks

    def __call__(self):
        lo, hi = self.axis.get_view_interval()
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= 0:
            return np.array([])
        if lo <= 0:
            lo = hi / 1e3
        span = np.log10(hi / lo)
        e0, e1 = int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1
        eps = 1e-9 * (hi - lo)
        if span >= 0.9:
            for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 3.0)):
                t = np.array([s * 10.0**e for e in range(e0, e1 + 1) for s in subs])
                t = t[(t >= lo - eps) & (t <= hi + eps)]
                if 3 <= t.size <= self.max_ticks:
                    return t
                if subs == (1.0,) and t.size > self.max_ticks:  # many decades: every k-th decade
                    k = int(np.ceil(t.size / self.max_ticks))
                    ex = np.round(np.log10(t)).astype(int)
                    return t[ex % k == 0]
        t = mticker.MaxNLocator(nbins=self.max_ticks - 1, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        t = t[(t > 0) & (t >= lo - eps) & (t <= hi + eps)]
        if t.size >= 2:
            return t
        return np.array([lo, hi])


class _LogMinor(mticker.Locator):
    """Unlabelled minor ticks: 2..9 within decades over spans of up to ~6 decades, decades beyond."""

    def __call__(self):
        lo, hi = sorted(self.axis.get_view_interval())
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= 0:
            return np.array([])
        lo = lo if lo > 0 else hi / 1e3
        e0, e1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        subs = np.arange(1, 10) if e1 - e0 <= 6 else (1.0,)
        t = np.array([s * 10.0**e for e in range(e0, e1 + 1) for s in subs])
        return t[(t >= lo) & (t <= hi)]


def _round(v: float, digits: int = 6) -> float:
    return float(f"{v:.{digits}g}")


def fmt_sci(v: float, digits: int = 2) -> str:
    """Mathtext for a number in scientific form: 1e21 -> 10^21, 6e18 -> 6×10^18; plain %g between 0.01 and 1e4."""
    if v is None or not np.isfinite(v):
        return "—"
    if v == 0 or 1e-2 <= abs(v) < 1e4:
        return f"{_round(v, digits + 1):g}"
    e = int(np.floor(np.log10(abs(v))))
    m = _round(v / 10.0**e, digits)
    if abs(m) >= 10:
        m, e = m / 10, e + 1
    return rf"$10^{{{e}}}$" if m == 1 else rf"${m:g}\times10^{{{e}}}$"


def fmt_count(v: float) -> str:
    """Counts (parameters, tokens, GPUs): 20M, 1.5B, 2T; scientific beyond 1000T."""
    if v is None or not np.isfinite(v):
        return "—"
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            if abs(v) >= 1e15:
                return fmt_sci(v)
            return f"{_round(v / div, 3):g}{suf}"
    return f"{_round(v, 3):g}"


def _plain(v: float) -> str:
    return f"{_round(v, 6):g}" if 1e-3 <= abs(v) < 1e5 or v == 0 else fmt_sci(v)


_FORMATS = {"sci": fmt_sci, "count": fmt_count, "plain": _plain}


class _TickLabels(mticker.Formatter):
    """Tick labels of one ``kind`` (see ``_log_axis``); 'plain' labels share one number of decimals (0.7, 0.8, 0.9,
    1.0 rather than ... 0.9, 1)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._tick_locs = np.array([])

    def set_locs(self, locs):
        self._tick_locs = np.asarray(locs, dtype=float)

    def __call__(self, v, pos=None):
        if not v > 0:
            return ""
        if self.kind == "plain":
            locs = [x for x in self._tick_locs if x > 0]
            if locs and all(1e-3 <= x < 1e5 for x in locs):
                dec = max(_decimals(x) for x in locs)
                return f"{v:.{dec}f}"
        return _FORMATS[self.kind](v)


def _decimals(v: float, most: int = 4) -> int:
    for d in range(most + 1):
        if abs(round(v, d) - v) <= 1e-9 * max(1.0, abs(v)):
            return d
    return most


def _log_axis(ax, which: str, kind: str = "sci", max_ticks: int | None = None) -> None:
    """Log scale on ``ax``'s x or y axis with readable labels: ``kind`` is 'sci' (FLOPs: 10^21, 3×10^20),
    'count' (N, D, GPUs: 70B, 1.4T) or 'plain' (loss, days: 2, 2.5, 3)."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(_LogTicks(max_ticks or (6 if which == "x" else 7)))
    axis.set_minor_locator(_LogMinor())
    axis.set_major_formatter(_TickLabels(kind))
    axis.set_minor_formatter(mticker.NullFormatter())


# ---------------------------------------------------------------------------------------------- robust curves
def _real(y) -> np.ndarray | None:
    """A float array, entries that are complex (non-zero imaginary part) or not numbers set to NaN; None if ``y``
    is not numeric at all."""
    try:
        a = np.asarray(y)
        if np.iscomplexobj(a):
            bad = np.abs(a.imag) > 1e-12 * np.maximum(np.abs(a.real), 1e-300)
            a = np.where(bad, np.nan, a.real)
        return a.astype(float)
    except _EVAL_ERRORS:
        return None


def _evaluate(fn, *args) -> np.ndarray | None:
    """``fn(*args)`` as a real float array with bad values as NaN, or None when it raises."""
    with np.errstate(all="ignore"):
        try:
            return _real(fn(*args))
        except _EVAL_ERRORS:
            return None


def _note(fig, notes: list, text: str) -> None:
    if text not in fig.notes:
        fig.notes.append(text)
    if text not in notes:
        notes.append(text)


def _drawable(x, y, log_y: bool = True):
    """(y as a float array, mask of drawable points), or None when fewer than two points are finite real numbers
    (positive on a log axis)."""
    x = np.asarray(x, dtype=float)
    y = _real(y)
    if y is not None and y.shape == ():
        y = np.full_like(x, float(y))
    if y is None or y.shape != x.shape:
        return None
    ok = np.isfinite(y) & np.isfinite(x) & ((y > 0) if log_y else True)
    return (y, ok) if ok.sum() >= 2 else None


def _curve(ax, x, y, what: str, fig, notes: list, log_y: bool = True, **kw):
    """Plot ``y(x)`` where its values are finite (and positive on a log axis); leave the curve out, and note it, when
    fewer than two points are drawable."""
    x = np.asarray(x, dtype=float)
    d = _drawable(x, y, log_y)
    if d is None:
        _note(fig, notes, f"{what}: not drawn (its values are not finite real numbers; the fit is degenerate)")
        return None
    y, ok = d
    if not ok.all():
        _note(fig, notes, f"{what}: drawn only where its values are finite")
    return ax.plot(x, np.where(ok, y, np.nan), **kw)[0]


def _band(ax, x, fn, samples, color, fig, notes: list, label="95% bootstrap band", what="95% bootstrap band",
          log_y: bool = True, main=None):
    """Shade the 2.5–97.5 percentile of curves evaluated for each bootstrap replicate; replicates whose curve is not
    finite and real everywhere are left out, and the band itself when fewer than half (or than 10) remain. With
    ``main`` (the fitted curve's values) the band is left out silently when that curve cannot be drawn (the curve's
    own note says why)."""
    if not samples or (main is not None and _drawable(x, main, log_y) is None):
        return None
    keys = list(samples)
    n = len(samples[keys[0]])
    if n == 0:
        return None
    if n < 10:
        _note(fig, notes, f"{what}: not drawn (only {n} bootstrap replicates)")
        return None
    idx = np.linspace(0, n - 1, min(n, 300)).astype(int)
    x = np.asarray(x, dtype=float)
    curves = []
    for i in idx:
        try:
            q = {k: float(samples[k][i]) for k in keys}
        except _EVAL_ERRORS:
            continue
        y = _evaluate(fn, q, x)
        if y is not None and y.shape == x.shape and np.all(np.isfinite(y)) and (not log_y or np.all(y > 0)):
            curves.append(y)
    if len(curves) < max(10, 0.5 * len(idx)):
        _note(fig, notes, f"{what}: not drawn (only {len(curves)} of {len(idx)} bootstrap replicates give finite "
                          "values)")
        return None
    if len(curves) < len(idx):
        _note(fig, notes, f"{what}: from the {len(curves)} of {len(idx)} replicates with finite values")
    lo, hi = np.percentile(np.array(curves), [2.5, 97.5], axis=0)
    return ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0, label=label)


def _extrapolation(ax, xmax, xend):
    if np.isfinite(xmax) and np.isfinite(xend) and xend > xmax:
        ax.axvspan(xmax, xend, color="#bdc3c7", alpha=0.25, lw=0, label="extrapolation (beyond the data)")


def _finite(*arrays):
    """Boolean mask of rows where every array is finite."""
    m = np.ones(np.asarray(arrays[0]).shape, dtype=bool)
    for a in arrays:
        m &= np.isfinite(np.asarray(a, dtype=float))
    return m


def _set_log_lim(ax, which, values, pad=None):
    """Limits of a log axis from the finite positive ``values``, padded by a factor (default: 6% of the log range)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        if pad is None:
            pad = float(np.clip((v.max() / v.min()) ** 0.06, 1.003, 1.5))
        lo, hi = v.min() / pad, v.max() * pad
        (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)


def _legend(where, axes, notes=(), ncols=None, width_in=None):
    """One legend for ``axes`` (deduplicated labels), outside below them; notes about what was left out go in its
    title, in orange."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    title = None
    if notes:
        width = int(12 * (width_in or 5.0))
        title = "\n".join(textwrap.fill(n, width) for n in notes)
    if not handles and not title:
        return None
    if ncols is None:
        longest = max((len(lab) for lab in labels), default=10)
        fit = int((width_in or 5.0) / (0.065 * longest + 0.5))
        ncols = max(1, min(len(handles), fit, 3))
    if not handles:
        handles, labels = [Line2D([], [], ls="none")], [""]
    leg = where.legend(handles, labels, loc="outside lower center", ncols=ncols, title=title, alignment="left",
                       title_fontproperties={"size": 7.5, "style": "italic"})
    if title:
        leg.get_title().set_color(NOTE_COLOR)
    return leg


def _no_data(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8, color=NOTE_COLOR,
            wrap=True)


def _law_optimal(law, c):
    """``law.optimal(c)`` (plot_frontier's argument ``laws`` hides the module there)."""
    return laws.ScalingLaw.optimal(law, c)


def _n_opt(q, c):
    """N_opt(C) = k_N·C^a of an allocation fit (Approaches 1 and 2)."""
    return laws.allocation_value(c, q["k_N"], q["a"])


def fit_figure(figure, fits) -> Figure:
    """The figure a method's spec names (``MethodSpec.figure``, a :class:`~scaling_planner.fitting.spec.FigureSpec`):
    its function drawn for the one fit, or for the list of fits when the figure is ``combined``."""
    fn = globals()[figure.function]
    return fn(list(fits)) if figure.combined else fn(fits[0])


def _exponent_label(a) -> str:
    a = float(a)
    return rf"fit: $N_{{opt}} \propto C^{{{a:.3f}}}$" if np.isfinite(a) else "fit: N_opt ∝ C^a (a not finite)"


def _fit_color(method: str, i: int) -> str:
    return METHOD_COLORS.get(method, OTHER_FIT_COLORS[i % len(OTHER_FIT_COLORS)])


# ---------------------------------------------------------------------------------------------- fits
@_styled
def plot_parametric(result, table=None) -> Figure:
    """Approach 3: runs coloured by model size, the compute-optimal frontier L_opt(C) with its band, and the fitted
    L(N, C) curves for three sizes; log residuals vs compute on the right."""
    p = result.params
    pdata = result.plot_data
    N, C, L = (np.asarray(pdata[k], dtype=float) for k in ("N", "C", "loss"))
    fig, (sf, _), (ax, axr) = _panels(2, w=5.2, h=4.6, width_ratios=[1.15, 1])
    notes = []
    norm = LogNorm(vmin=N.min(), vmax=max(N.max(), N.min() * 1.001))
    cmap = matplotlib.colormaps["viridis"]
    sc = ax.scatter(C, L, c=N, norm=norm, s=12, cmap=cmap, alpha=0.85, label="runs (colour: N)", zorder=3)
    cb = sf.colorbar(sc, ax=ax, pad=0.01)
    cb.set_label("parameters N")
    _log_axis(cb.ax, "y", "count", max_ticks=6)
    at = result.derived.get("at_flops")
    at = float(at) if isinstance(at, (int, float)) and np.isfinite(at) and at > 0 else C.max()
    x = np.geomspace(C.min() / 2, max(C.max(), at) * 3, 200)

    def frontier(q, c):  # L at the compute-optimal (N, D) of each C (Hoffmann Eq. 4)
        n, d = laws.chinchilla_allocation(c, q["A"], q["B"], q["alpha"], q["beta"])
        return laws.chinchilla_loss(n, d, q["E"], q["A"], q["B"], q["alpha"], q["beta"])

    front = _evaluate(frontier, p, x)
    _band(ax, x, frontier, result.samples, FIT_COLOR, fig, notes, what="compute-optimal L(C): 95% band", main=front)
    _curve(ax, x, front, "compute-optimal L(C)", fig, notes, color=FIT_COLOR, lw=2, label="compute-optimal L(C) (fit)",
           zorder=4)
    for n in np.quantile(np.unique(N), [0.1, 0.5, 0.9]):
        y = _evaluate(lambda q, xx, n=n: laws.chinchilla_loss(n, xx / (6 * n), q["E"], q["A"], q["B"], q["alpha"],
                                                              q["beta"]), p, x)
        _curve(ax, x, y, f"fit at N = {fmt_count(n)}", fig, notes, color=cmap(norm(n)), lw=1, ls="--",
               label=f"fit at N = {fmt_count(n)}")
    _extrapolation(ax, C.max(), x.max())
    show_E = bool(np.isfinite(p.get("E", np.nan)) and p["E"] > 0.5 * L.min())  # else far below everything
    if show_E:
        ax.axhline(p["E"], color="#7f8c8d", lw=0.8, ls=":", label=f"irreducible loss E = {p['E']:.3g}")
    _mark_holdout(ax, result)
    _log_axis(ax, "x", "sci")
    _log_axis(ax, "y", "plain")
    ax.set_xlim(x.min(), x.max())
    ylo = [L.min()] + ([p["E"]] if show_E else [])
    if front is not None and np.any(np.isfinite(front) & (front > 0)):
        ylo.append(np.nanmin(np.where(front > 0, front, np.nan)))
    _set_log_lim(ax, "y", [min(v for v in ylo if np.isfinite(v) and v > 0), L.max()])
    ax.set_xlabel("training compute C (FLOPs, 6ND)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("Approach 3: L = E + A/N^α + B/D^β")

    pred = _evaluate(lambda q: laws.chinchilla_loss(N, C / (6 * N), q["E"], q["A"], q["B"], q["alpha"], q["beta"]),
                     p)
    res = None if pred is None else np.log(np.where(pred > 0, pred, np.nan)) - np.log(L)
    if res is not None and np.isfinite(res).any():
        m = np.isfinite(res)
        axr.scatter(C[m], res[m], s=10, color=DATA_COLOR, label="log residual of each run")
    else:
        _note(fig, notes, "residuals: not drawn (the fit's predictions are not finite)")
    axr.axhline(0, color=FIT_COLOR, lw=1, label="zero residual (fit)")
    _log_axis(axr, "x", "sci")
    axr.set_xlabel("training compute C (FLOPs)")
    axr.set_ylabel("log residual  ln L̂ − ln L")
    axr.set_title("residuals vs compute")
    _legend(fig, [ax, axr], notes, ncols=4, width_in=10.4)
    return fig


def _mark_holdout(ax, result):
    h = result.holdout or {}
    pts = h.get("points") or []
    if pts:
        C = [6 * q["N"] * q["D"] for q in pts]
        ax.scatter(C, [q["loss"] for q in pts], marker="x", color="black", s=40, zorder=5, label="held-out runs")
        pr = np.array([q["predicted"] if q["predicted"] is not None else np.nan for q in pts], dtype=float)
        m = np.isfinite(pr) & (pr > 0)
        if m.any():
            ax.scatter(np.asarray(C)[m], pr[m], marker="+", color=FIT_COLOR, s=60, zorder=5,
                       label="their prediction (fit without them)")


@_styled
def plot_single(results) -> Figure:
    """Kaplan single-variable laws (one panel each): selected points, all points faded, the fitted power law with its
    95% bootstrap band and the extrapolation region."""
    results = results if isinstance(results, (list, tuple)) else [results]
    fig, subs, axes = _panels(len(results), w=4.3, h=4.3, split=True)
    for sf, ax, result in zip(subs, axes, results):
        notes = []
        pd_ = result.plot_data
        var = pd_["var"]
        x, y = np.asarray(pd_["x"], dtype=float), np.asarray(pd_["loss"], dtype=float)
        xa, ya = np.asarray(pd_["x_all"], dtype=float), np.asarray(pd_["loss_all"], dtype=float)
        ax.scatter(xa, ya, s=6, color="#bdc3c7", label="all points")
        ax.scatter(x, y, s=14, color=DATA_COLOR, label={"N": "best loss per size", "D": "best loss per token count",
                                                         "C": "compute frontier"}[var])
        xs = np.geomspace(x.min() / 2, x.max() * 10, 200)
        p = result.params

        def curve(q, xx, var=var):
            return laws.power_value(xx, q[f"{var}_c"], q[f"alpha_{var}"], q.get("E", 0.0))

        yfit = _evaluate(curve, p, xs)
        _band(ax, xs, curve, result.samples, FIT_COLOR, fig, notes, what=f"L({var}): 95% band", main=yfit)
        lab = f"fit: α_{var} = {p[f'alpha_{var}']:.3g}" + (f", E = {p['E']:.3g}" if "E" in p else "")
        _curve(ax, xs, yfit, f"L({var}) fit", fig, notes, color=FIT_COLOR, lw=2, label=lab)
        _extrapolation(ax, x.max(), xs.max())
        _log_axis(ax, "x", "sci" if var == "C" else "count", max_ticks=5)
        _log_axis(ax, "y", "plain")
        ax.set_xlim(xs.min(), xs.max())
        ys = np.concatenate([ya, y])
        ys = ys[np.isfinite(ys) & (ys > 0)]
        if ys.size and yfit is not None:  # show where the fit goes, within reason
            ys = np.concatenate([ys, np.clip(yfit[np.isfinite(yfit)], ys.min() / 1.5, ys.max() * 1.5)])
        _set_log_lim(ax, "y", ys)
        ax.set_xlabel({"N": "parameters N", "D": "training tokens D", "C": "training compute C (FLOPs)"}[var])
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(f"Kaplan L({var})")
        _legend(sf, [ax], notes, ncols=2, width_in=4.3)
    return fig


@_styled
def plot_isoflop(result) -> Figure:
    """Approach 2 (Chinchilla Fig. 3 style): loss vs N per budget with parabolas and vertices; N_opt vs C."""
    pd_ = result.plot_data
    N, L, B = (np.asarray(pd_[k], dtype=float) for k in ("N", "loss", "budgets"))
    verts = [v for v in result.info.get("vertices", []) if np.isfinite(v.get("budget", np.nan)) and v["budget"] > 0]
    budgets = sorted({v["budget"] for v in verts})
    fig, (sf, _), (ax, ax2) = _panels(2, w=5.2, h=4.6)
    notes = []
    if not budgets:
        ax.scatter(N, L, s=14, color=DATA_COLOR, label="runs")
        _note(fig, notes, "no IsoFLOP vertices to draw")
        _legend(fig, [ax], notes, width_in=10.4)
        return fig
    cmap = matplotlib.colormaps["plasma"]
    many = len(budgets) > 10
    bnorm = LogNorm(min(budgets), max(max(budgets), min(budgets) * 1.001))
    for C in budgets:
        m = B == C
        col = cmap(0.85 * float(bnorm(C)))  # colour by log compute (the colour bar's scale when there are many)
        ax.scatter(N[m], L[m], s=14, color=col)
        if C in pd_.get("curves", {}):  # the fit's own curve: the window's parabola, or the spline
            cx, cy = (np.asarray(v, dtype=float) for v in pd_["curves"][C])
        else:
            xl = np.log(N[m])
            with np.errstate(all="ignore"):
                try:
                    c2, c1, c0 = np.polyfit(xl, L[m], 2)
                except (ValueError, np.linalg.LinAlgError):
                    c2 = c1 = c0 = np.nan
            xs = np.linspace(xl.min(), xl.max(), 100)
            cx, cy = np.exp(xs), c0 + c1 * xs + c2 * xs**2
        _curve(ax, cx, cy, f"IsoFLOP curve at {C:.2g} FLOPs", fig, notes, log_y=False,
               color=col, lw=1, label="_nolegend_" if many else f"C = {fmt_sci(C)} FLOPs")
        v = next(v for v in verts if v["budget"] == C)
        ax.scatter([v["N_opt"]], [v["loss_opt"]], marker="v", color=col, edgecolor="black", s=40, zorder=4)
    what = "interpolated minimum" if pd_.get("vertex") == "interpolated" else "parabola minimum"
    ax.scatter([], [], marker="v", color="white", edgecolor="black", s=40, label=f"vertex ({what})")
    _log_axis(ax, "x", "count")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("final loss (nats/token)")
    ax.set_title("IsoFLOP profiles")
    if many:
        sm = matplotlib.cm.ScalarMappable(norm=bnorm,
                                          cmap=matplotlib.colors.ListedColormap(cmap(np.linspace(0, 0.85, 256))))
        cb = sf.colorbar(sm, ax=ax, pad=0.01)
        cb.set_label("compute budget C (FLOPs)")
        _log_axis(cb.ax, "y", "sci", max_ticks=6)

    Cv = np.array([v["budget"] for v in verts], dtype=float)
    Nv = np.array([v["N_opt"] for v in verts], dtype=float)
    _n_opt_panel(ax2, fig, notes, result, Cv, Nv, np.geomspace(Cv.min() / 3, Cv.max() * 30, 100),
                 dict(s=20, zorder=3, label="vertices (N_opt of each budget)"), "Approach 2: N_opt(C)")
    _legend(fig, [ax, ax2], notes, ncols=4, width_in=10.4)
    return fig


def _n_opt_panel(ax, fig, notes, result, C, N, xs, points: dict, title: str) -> None:
    """The N_opt(C) panel of Approaches 1 and 2: the fitted power law with its 95% bootstrap band over ``xs``, the
    points it was fitted to (``points``: scatter keywords), and the extrapolated range shaded."""
    nfit = _evaluate(_n_opt, result.params, xs)
    _band(ax, xs, _n_opt, result.samples, FIT_COLOR, fig, notes, what="N_opt(C): 95% band", main=nfit)
    ax.scatter(C, N, color=DATA_COLOR, **points)
    _curve(ax, xs, nfit, "N_opt(C) fit", fig, notes, color=FIT_COLOR, lw=2, label=_exponent_label(result.params["a"]))
    _extrapolation(ax, C.max(), xs.max())
    _log_axis(ax, "x", "sci")
    _log_axis(ax, "y", "count")
    ax.set_xlim(xs.min(), xs.max())
    ax.set_xlabel("compute C (FLOPs)")
    ax.set_ylabel("optimal parameters N_opt")
    ax.set_title(title)


@_styled
def plot_envelope(result) -> Figure:
    """Approach 1 (Chinchilla Fig. 2 style): learning curves vs compute, their lower envelope, and N_opt vs C."""
    pd_ = result.plot_data
    C, L, run, N = (np.asarray(pd_[k]) for k in ("C", "loss", "run", "N"))
    C, L, N = C.astype(float), L.astype(float), N.astype(float)
    fig, (sf, _), (ax, ax2) = _panels(2, w=5.2, h=4.4)
    notes = []
    norm = LogNorm(vmin=N.min(), vmax=max(N.max(), N.min() * 1.001))
    cmap = matplotlib.colormaps["viridis"]
    for i, r in enumerate(np.unique(run)[:400]):
        m = run == r
        o = np.argsort(C[m])
        ax.plot(C[m][o], L[m][o], color=cmap(norm(np.median(N[m]))), lw=0.5, alpha=0.5,
                label="training runs (colour: N)" if i == 0 else "_nolegend_")
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = sf.colorbar(sm, ax=ax, pad=0.01)
    cb.set_label("parameters N")
    _log_axis(cb.ax, "y", "count", max_ticks=6)
    _curve(ax, pd_["C_env"], pd_["L_env"], "envelope", fig, notes, color=FIT_COLOR, lw=2,
           label="envelope (lowest loss at each C)")
    _log_axis(ax, "x", "sci")
    _log_axis(ax, "y", "plain")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("training curves and their envelope")

    Ce, Ne = np.asarray(pd_["C_env"], dtype=float), np.asarray(pd_["N_env"], dtype=float)
    _n_opt_panel(ax2, fig, notes, result, Ce, Ne, np.geomspace(Ce.min(), Ce.max() * 30, 100),
                 dict(s=6, label="N on the envelope"), "Approach 1: N_opt(C)")
    _legend(fig, [ax, ax2], notes, ncols=4, width_in=10.4)
    return fig


@_styled
def plot_frontier(fits, laws, target_flops=None, c_range=None) -> Figure:
    """N_opt(C) and D_opt(C): the user's fits (each its own colour, with its band) against published laws (dashed);
    the target budget marked. One legend for both panels, below them."""
    fig = ReportFigure(figsize=(10.4, 4.8), layout="constrained")
    axn, axd = fig.subplots(1, 2)
    for ax in (axn, axd):
        ax.grid(True, which="major", alpha=0.25)
    notes = []
    lo, hi = c_range or (1e18, 1e26)
    if target_flops:
        lo, hi = min(lo, target_flops / 10), max(hi, target_flops * 10)
    x = np.geomspace(lo, hi, 200)
    ref = {axn: [], axd: []}  # y values of the published laws: they set the axis range
    for law in laws:
        if not law.has_optimal:
            continue
        nd = _evaluate(lambda c, law=law: np.array(law.optimal(c)), x)
        if nd is None:
            continue
        col = LAW_COLORS.get(law.name, "#7f8c8d")
        conv = str(law.conventions.get("N", "?")).split()[0]
        for ax, y in ((axn, nd[0]), (axd, nd[1])):
            if _curve(ax, x, y, f"{law.name}", fig, notes, color=col, lw=1.2, ls="--", zorder=4,
                      label=f"{law.name} (N: {conv})") is not None:  # thin dashes over the fits: both visible
                ref[ax].append(y)
    fitted = {axn: [], axd: []}
    for i, f in enumerate(fits):
        col = _fit_color(f.method, i)
        label = f"your fit ({f.method})"
        try:
            law = f.to_law(f.method)
        except _EVAL_ERRORS:
            _note(fig, notes, f"{label}: not drawn (no law could be made from it)")
            continue
        if not law.has_optimal:
            continue
        nd = _evaluate(lambda c, law=law: np.array(law.optimal(c)), x)
        n_y, d_y = (None, None) if nd is None or nd.ndim != 2 else (nd[0], nd[1])
        if _drawable(x, n_y) is None and _drawable(x, d_y) is None:
            _note(fig, notes, f"{label}: not drawn (its N_opt and D_opt are not finite real numbers; the fit is "
                              "degenerate)")
            continue
        if f.samples and law.form != "power":
            samples = {k: v for k, v in f.samples.items() if k in law.params}

            def nopt(q, c, law=law):
                return _law_optimal(law.with_params({**law.params, **q}), c)[0]

            def dopt(q, c, law=law):
                return _law_optimal(law.with_params({**law.params, **q}), c)[1]

            _band(axn, x, nopt, samples, col, fig, notes, label=None, what=f"{label}: N_opt band", main=n_y)
            _band(axd, x, dopt, samples, col, fig, notes, label=None, what=f"{label}: D_opt band", main=d_y)
        for ax, y, what in ((axn, n_y, "N_opt"), (axd, d_y, "D_opt")):
            if _curve(ax, x, y, f"{label}: {what}", fig, notes, color=col, lw=2.2, zorder=3, label=label,
                      marker=FIT_MARKERS[i % len(FIT_MARKERS)], markevery=(8 * i + 10, 33), ms=5,
                      mec="white", mew=0.6) is not None:  # markers tell overlapping fits apart
                fitted[ax].append(y)
    for ax, what in ((axn, "optimal parameters N_opt"), (axd, "optimal tokens D_opt")):
        if target_flops:
            ax.axvline(target_flops, color="black", lw=1, ls=":", label=f"target {fmt_sci(target_flops)} FLOPs")
        _log_axis(ax, "x", "sci")
        _log_axis(ax, "y", "count")
        ax.set_xlim(lo, hi)
        _frontier_ylim(ax, ref[ax], fitted[ax])
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(what)
    axn.set_title("compute-optimal model size")
    axd.set_title("compute-optimal tokens")
    _legend(fig, [axn, axd], notes, ncols=3, width_in=10.4)
    return fig


def _frontier_ylim(ax, ref, fitted):
    """Y range: the published laws, widened to show the fits but by at most 100x each way, so that a degenerate
    fit cannot squash everything else into a line."""
    def span(ys):
        v = np.concatenate([np.asarray(y, float).ravel() for y in ys]) if ys else np.array([])
        v = v[np.isfinite(v) & (v > 0)]
        return (v.min(), v.max()) if v.size else None

    r, f = span(ref), span(fitted)
    if r is None and f is None:
        return
    if r is None:
        lo, hi = f
    elif f is None:
        lo, hi = r
    else:
        lo, hi = max(min(r[0], f[0]), r[0] / 100), min(max(r[1], f[1]), r[1] * 100)
    ax.set_ylim(lo / 1.5, hi * 1.5)


# ---------------------------------------------------------------------------------------------- groups
def _group_colors(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _group_label(grep, group: str) -> str:
    keys = grep.keys.get(group)
    return ", ".join(keys.values()) if keys else group


@_styled
def plot_groups(grep, method: str | None = None) -> Figure:
    """Conditions overlaid (``fit --group-by``): for ``method``, each group's N_opt(C) (its 95% bootstrap band when
    there are at most 6 groups) with the points it was fitted to (IsoFLOP vertices, envelope points), and each
    group's final losses against compute with the method's loss along its compute-optimal frontier (or its IsoFLOP
    vertices / envelope when the law predicts no loss); the common budget marked. ``method=None``: the losses only."""
    groups = [g for g in grep.reports if method is None or grep.reports[g].get(method) is not None]
    colors = dict(zip(groups, _group_colors(len(groups))))
    n_panels = 1 if method is None else 2
    fig, _, axes = _panels(n_panels, w=5.2, h=4.6)
    axn, axl = (None, axes[0]) if method is None else axes
    notes: list = []
    at = grep.at_flops
    cmin = min(float(grep.reports[g].table.C.min()) for g in groups) if groups else 1e18
    cmax = max(float(grep.reports[g].table.C.max()) for g in groups) if groups else 1e20
    hi = max(cmax, at or cmax) * 3
    x = np.geomspace(cmin / 2, hi, 200)
    n_vals, l_vals = [], []
    few = len(groups) <= 6
    for i, g in enumerate(groups):
        rep = grep.reports[g]
        col, label = colors[g], _group_label(grep, g)
        mk = FIT_MARKERS[i % len(FIT_MARKERS)]
        final = rep.table.final()
        axl.scatter(final.C, final.loss, s=7, color=col, alpha=0.35, lw=0, label="_nolegend_")
        l_vals += list(final.loss)
        if method is None:
            axl.scatter([], [], s=14, color=col, label=label)
            continue
        f = rep.get(method)
        usable = f.converged
        try:
            law = f.to_law(method) if usable else None
        except _EVAL_ERRORS:
            law = None
        tag = "" if usable else " (not usable)"
        if law is not None and law.has_optimal:
            nd = _evaluate(lambda c, law=law: np.array(law.optimal(c)), x)
            n_y = nd[0] if nd is not None and nd.ndim == 2 else None
            if few and f.samples and law.form != "power":
                samples = {k: v for k, v in f.samples.items() if k in law.params}

                def nopt(q, c, law=law):
                    return _law_optimal(law.with_params({**law.params, **q}), c)[0]

                _band(axn, x, nopt, samples, col, fig, notes, label=None, what=f"{label}: N_opt band", main=n_y)
            if _curve(axn, x, n_y, f"{label}: N_opt", fig, notes, color=col, lw=1.8, label=label + tag) is not None:
                n_vals += list(n_y[np.isfinite(n_y)])
            if law.has_loss and nd is not None and nd.ndim == 2:
                ly = _evaluate(lambda c, law=law, nd=nd: np.asarray(law.loss(nd[0], nd[1]), dtype=float), x)
                _curve(axl, x, ly, f"{label}: compute-optimal loss", fig, notes, color=col, lw=1.8)
        elif law is None:
            axn.plot([], [], color=col, lw=1.8, label=label + tag)
            _note(fig, notes, f"{label}: not drawn (the {method} fit is not usable)")
        pts = _group_points(f)
        if pts is not None:
            Cp, Np, Lp = pts
            axn.scatter(Cp, Np, s=12, color=col, marker=mk, edgecolor="white", lw=0.4, zorder=3)
            n_vals += list(Np)
            if Lp is not None and not (law is not None and law.has_loss):
                o = np.argsort(Cp)
                axl.plot(Cp[o], Lp[o], color=col, lw=1.2, marker=mk, ms=3.5, mec="white", mew=0.4)
    axes_used = [a for a in (axn, axl) if a is not None]
    for ax in axes_used:
        if at:
            ax.axvline(at, color="black", lw=1, ls=":", label=f"common budget {fmt_sci(at)} FLOPs")
        _extrapolation(ax, cmax, hi)
        _log_axis(ax, "x", "sci")
        ax.set_xlim(x.min(), x.max())
        ax.set_xlabel("training compute C (FLOPs, 6ND)")
    if axn is not None:
        _log_axis(axn, "y", "count")
        _set_log_lim(axn, "y", n_vals)
        axn.set_ylabel("optimal parameters N_opt")
        axn.set_title(f"{method}: N_opt(C) by group")
    _log_axis(axl, "y", "plain")
    _set_log_lim(axl, "y", l_vals)
    axl.set_ylabel("final loss (nats/token)")
    axl.set_title("loss vs compute by group" + (f" ({method})" if method else ""))
    _legend(fig, axes_used, notes, ncols=3 if n_panels == 2 else 2, width_in=5.2 * n_panels)
    return fig


def _group_points(f):
    """(C, N_opt, loss or None) of the points a fit's N_opt(C) was fitted to: Approach 2's IsoFLOP vertices,
    Approach 1's envelope (thinned to 40); None for the other methods."""
    verts = [v for v in f.info.get("vertices", []) if all(np.isfinite(v.get(k, np.nan)) for k in ("budget", "N_opt"))]
    if verts:
        return (np.array([v["budget"] for v in verts], dtype=float), np.array([v["N_opt"] for v in verts], dtype=float),
                np.array([v.get("loss_opt", np.nan) for v in verts], dtype=float))
    pd_ = f.plot_data or {}
    if "C_env" in pd_ and "N_env" in pd_:
        C, N = np.asarray(pd_["C_env"], dtype=float), np.asarray(pd_["N_env"], dtype=float)
        L = np.asarray(pd_.get("L_env", np.full(C.shape, np.nan)), dtype=float)
        idx = np.unique(np.linspace(0, C.size - 1, min(C.size, 40)).astype(int)) if C.size else np.array([], int)
        return C[idx], N[idx], L[idx]
    return None


# ---------------------------------------------------------------------------------------------- memory / plan
@_styled
def plot_memory_bars(labels, breakdowns_gib, limit_gib=None, title="per-GPU memory") -> Figure:
    """Stacked bars of the memory components (GiB) for several configurations, with the GPU's usable memory; each
    bar's total on top (red when over the limit). The legend lists the components top to bottom as stacked."""
    n = len(labels)
    fig, (sf,), (ax,) = _panels(1, w=max(5.5, 1.25 * n + 2.8), h=4.0)
    ax.grid(False, axis="x")
    bottom = np.zeros(n)
    handles = []
    for k in MEM_KEYS:
        vals = np.array([float(b.get(k, 0.0) or 0.0) for b in breakdowns_gib])
        vals = np.where(np.isfinite(vals), vals, 0.0)
        used = bool(np.any(vals > 0))
        bars = ax.bar(range(n), vals, bottom=bottom, color=MEM_COLORS[k], width=0.6,
                      label=k if used else "_nolegend_")
        if used:
            handles.append((bars, k))
        bottom += vals
    top = max([float(bottom.max()) if n else 0.0] + ([float(limit_gib)] if limit_gib else []))
    for i, tot in enumerate(bottom):
        over = bool(limit_gib) and tot > limit_gib
        ax.text(i, tot + 0.012 * top, f"{tot:.1f}", ha="center", va="bottom", fontsize=7.5, zorder=5,
                color=FIT_COLOR if over else "#333333", fontweight="bold" if over else "normal",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    legend_items = handles[::-1]  # top of the stack first
    if limit_gib:
        line = ax.axhline(limit_gib, color="black", lw=1.2, ls="--", label=f"usable {limit_gib:.0f} GiB")
        legend_items.insert(0, (line, line.get_label()))
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xticks(range(n))
    ax.set_xticklabels([textwrap.fill(str(lb), 16) for lb in labels], fontsize=7.5)
    ax.set_ylabel("GiB per GPU (2³⁰ bytes)")
    ax.set_title(title)
    if legend_items:
        ax.legend([h for h, _ in legend_items], [lab for _, lab in legend_items], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=7.5, borderaxespad=0)
    return fig


@_styled
def plot_time_cost(gpu_counts, days, costs, chosen=None) -> Figure:
    """Wall-clock days (left axis, log) and cost (right axis, from zero) vs number of GPUs (best layout at each
    count); the chosen count marked. One legend below the axes."""
    g = np.asarray(gpu_counts, dtype=float)
    dd = np.asarray(days, dtype=float)
    fig, (sf,), (ax,) = _panels(1, w=5.6, h=4.2)
    notes = []
    m = _finite(g, dd) & (g > 0) & (dd > 0)
    ax.plot(g[m], dd[m], "o-", color=DATA_COLOR, label="wall-clock days")
    _log_axis(ax, "x", "count")
    if 0 < m.sum() <= 8:  # label the GPU counts scanned, as integers
        ax.xaxis.set_major_locator(mticker.FixedLocator(g[m]))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    _log_axis(ax, "y", "plain")
    ax.set_xlabel("number of GPUs")
    ax.set_ylabel("wall-clock days")
    if chosen:
        ax.axvline(chosen, color="black", ls=":", lw=1, label=f"chosen: {chosen} GPUs")
    axes = [ax]
    if costs is not None and len(costs) and all(c is not None for c in costs):
        cost = np.asarray(costs, dtype=float)
        mc = m & np.isfinite(cost)
        ax2 = ax.twinx()
        ax2.plot(g[mc], cost[mc], "s--", color=FIT_COLOR, label="cost (right axis)")
        ax2.set_ylabel("cost (USD)", color=FIT_COLOR)
        ax2.tick_params(axis="y", colors=FIT_COLOR)
        ax2.spines["right"].set_visible(True)
        ax2.grid(False)
        if mc.any():
            ax2.set_ylim(0, np.nanmax(cost[mc]) * 1.15)
        ax2.yaxis.set_major_formatter(mticker.FuncFormatter(_usd))
        axes.append(ax2)
    ax.set_title("time and cost vs GPUs")
    _legend(sf, axes, notes, ncols=3, width_in=5.6)
    return fig


def _usd(v, _pos=None) -> str:
    if v == 0:
        return "$0"
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"${_round(v / div, 3):g}{suf}"
    return f"${v:g}"
