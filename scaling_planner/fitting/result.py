"""Fit results, in the spirit of statsmodels' results objects: parameters, intervals, diagnostics, ``summary()``."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..laws import ScalingLaw
from .common import percentile_ci  # noqa: F401  (re-exported: its home is common.py)


def __getattr__(name: str):
    """``LAW_FORMS`` and ``PRIMARY_ORDER``, read from the registry (kept for old imports)."""
    from . import registry

    if name == "LAW_FORMS":
        return {m: s.law_form for m, s in registry.REGISTRY.items()}
    if name == "PRIMARY_ORDER":
        return registry.primary_order()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class FitResult:
    """One method's fit. ``params`` use the method's published names (E, A, B, alpha, beta; N_c, alpha_N; k_N, a, ...).

    ``ci95`` are 95% percentile bootstrap intervals (runs resampled, every replicate re-converged); ``derived`` holds
    quantities computed from the params (a, b, G, N_opt/D_opt/loss at ``at_flops``); ``info`` optimiser diagnostics.
    """

    method: str
    params: dict[str, float]
    n_points: int
    objective: float | None = None
    converged: bool = True
    ci95: dict[str, list[float]] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, np.ndarray] | None = None
    holdout: dict[str, Any] | None = None
    plot_data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        # results never carry complex numbers (a negative base to a fractional power): NaN instead, and not converged
        had = False
        for name in ("params", "derived", "ci95"):
            d = getattr(self, name)
            if any(_has_complex(v) for v in d.values()):
                had = True
                object.__setattr__(self, name, {k: _real(v) for k, v in d.items()})
        if had and self.converged:
            object.__setattr__(self, "converged", False)
            object.__setattr__(self, "warnings", (*self.warnings, "a fitted or derived number came out complex "
                                                  "(not a real number) and is reported as not available"))

    def to_dict(self) -> dict:
        return {"method": self.method, "params": _clean(self.params), "ci95": _clean(self.ci95),
                "objective": _clean(None if self.objective is None else float(self.objective)),
                "n_points": int(self.n_points),
                "converged": bool(self.converged), "derived": _clean(self.derived), "warnings": list(self.warnings),
                "info": _clean(self.info), "holdout": _clean(self.holdout)}

    def spec(self):
        """This method's :class:`~.spec.MethodSpec` (None for a method the registry does not know)."""
        from .registry import get

        return get(self.method)

    def law_params(self) -> tuple[str, dict[str, float], dict]:
        """(form, params, extra ScalingLaw kwargs) for saving this fit as a law (the form and the renaming of the
        params come from the method's spec)."""
        spec = self.spec()
        if spec is None:
            from ..errors import ScalePlanError

            raise ScalePlanError(f"unknown method {self.method!r}: no law form for it")
        ren = dict(spec.params_map)
        form = spec.law_form
        if form == "allocation":
            return form, {k: self.params[k] for k in ("k_N", "a", "k_D", "b") if k in self.params}, {}
        lp = {new: self.params[old] for old, new in spec.params_map if old in self.params}
        lp.update({k: v for k, v in self.params.items() if k not in ren})
        return form, lp, ({"variable": spec.variable} if spec.variable else {})

    def _law_keys(self) -> dict[str, str]:
        spec = self.spec()
        return dict(spec.params_map) if spec is not None else {}

    def to_law(self, name: str | None = None, table=None, options: dict | None = None) -> ScalingLaw:
        """This fit as a :class:`ScalingLaw` (named ``name``, default the method), so that it answers ``loss`` and
        ``optimal`` like any published law."""
        name = self.method if name is None else name
        form, lp, kw = self.law_params()
        ren = self._law_keys()
        ci = {ren.get(k, k): v for k, v in self.ci95.items() if ren.get(k, k) in lp}
        samples = None
        if self.samples:
            samples = {ren.get(k, k): np.asarray(v).tolist() for k, v in self.samples.items() if ren.get(k, k) in lp}
        fit = {"method": self.method, "options": options or {}, "date": _dt.date.today().isoformat(),
               "objective": self.objective, "n_points": self.n_points, "converged": self.converged,
               "derived": _clean(self.derived), "info": _clean(self.info)}
        if table is not None:
            fit["data"] = {"file": table.source, "sha256": table.sha256, "rows": len(table)}
        conv = {"N": table.param_count if table is not None else "total", "D": "tokens", "C": "FLOPs, C = 6ND",
                "loss": "as in the fitted run log"}
        return ScalingLaw(name=name, form=form, params=lp, title=f"{self.method} fit" +
                          (f" to {table.source}" if table is not None else ""), conventions=conv,
                          citation={"paper": "fitted with scaleplan", "data": table.source if table else ""},
                          ci95=ci, fit=_clean(fit), samples=samples, **kw)

    def summary(self) -> str:
        lines = [f"{self.method}: n_points={self.n_points} objective={self.objective} converged={self.converged}"]
        for k, v in self.params.items():
            ci = self.ci95.get(k)
            lines.append(f"  {k:>8} = {v:.6g}" + (f"  95% CI [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
        for k, v in self.derived.items():
            if isinstance(v, (int, float)):
                lines.append(f"  {k:>8} = {v:.6g} (derived)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class FitReport:
    """All fits of one ``fit`` call, plus what was skipped and why."""

    input: dict
    fits: tuple[FitResult, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    table: Any = field(default=None, repr=False, compare=False)
    at_flops: float | None = None  # the one budget (FLOPs) at which every method reports N_opt, D_opt and loss
    at_flops_source: str = ""  # why that budget: "largest compute in the data" or "--at-flops"

    def to_dict(self) -> dict:
        return {"input": _clean(self.input), "fits": [f.to_dict() for f in self.fits],
                "skipped": dict(self.skipped), "options": _clean(self.options),
                "at_flops": _clean(self.at_flops), "at_flops_source": self.at_flops_source or None,
                "holdout": _clean(self.holdout_summary())}

    def holdout_table(self) -> list[dict]:
        """The holdout check of every method side by side: one row per fit that has one, with ``method``, ``by``
        (compute | size), ``k``, ``runs`` (how many runs were held out), ``n_points``, ``mean_abs_rel_error``,
        ``max_abs_rel_error`` (of the predicted loss on the held-out runs), ``max_train_flops``, ``max_train_N``
        (the largest compute and size fitted) and ``note`` (why there is no error, e.g. a method that predicts no
        loss). Empty without a holdout."""
        rows = []
        for f in self.fits:
            h = f.holdout
            if not h:
                continue
            rows.append({"method": f.method, "by": h.get("by", "compute"), "k": h.get("k"),
                         "runs": len(h.get("runs", [])), "n_points": h.get("n_points"),
                         "mean_abs_rel_error": h.get("mean_abs_rel_error"),
                         "max_abs_rel_error": h.get("max_abs_rel_error"),
                         "max_train_flops": h.get("max_train_flops"), "max_train_N": h.get("max_train_N"),
                         "note": h.get("note")})
        return rows

    def holdout_summary(self) -> dict | None:
        """``{"k", "by", "methods": holdout_table()}``, or None without a holdout (the ``holdout`` key of
        ``to_dict``)."""
        k = self.options.get("holdout") if self.options else None
        if not k:
            return None
        return {"k": int(k), "by": self.options.get("holdout_by", "compute"), "methods": self.holdout_table()}

    def get(self, method: str) -> FitResult | None:
        return next((f for f in self.fits if f.method == method), None)

    def primary(self) -> FitResult | None:
        """The first converged fit in the registry's preference order (``MethodSpec.primary_rank``: approach3
        first); if none converged, the first fit."""
        from .registry import primary_order

        found = [f for f in (self.get(m) for m in primary_order()) if f is not None]
        return next((f for f in found if f.converged), found[0] if found else None)

    def to_law(self, name: str) -> ScalingLaw:
        """The primary fit as a law, with every fit also stored under ``components`` by method name."""
        from dataclasses import replace

        from ..errors import ScalePlanError

        prim = self.primary()
        if prim is None:
            raise ScalePlanError("nothing was fitted, so there is no law to save")
        if not prim.converged:
            raise ScalePlanError("no fit gave a usable law, so there is nothing to save: " + "; ".join(
                f"{f.method}: {f.warnings[0] if f.warnings else 'did not converge'}" for f in self.fits))
        law = prim.to_law(name, self.table, self.options)
        comps = {}
        for f in self.fits:
            form, lp, kw = f.law_params()
            comps[f.method] = {"form": form, "params": lp, **kw, "title": f"{f.method} fit",
                               "ci95": {k: v for k, v in f.ci95.items()}, "derived": _clean(f.derived)}
        return replace(law, components=comps, fit={**law.fit, "skipped": dict(self.skipped)})

    def summary(self) -> str:
        return "\n\n".join(f.summary() for f in self.fits)


def _has_complex(v) -> bool:
    if isinstance(v, (complex, np.complexfloating)):
        return True
    if isinstance(v, np.ndarray):
        return np.iscomplexobj(v)
    if isinstance(v, (list, tuple)):
        return any(_has_complex(x) for x in v)
    return False


def _real(v):
    """v with every complex number replaced by NaN."""
    if isinstance(v, (complex, np.complexfloating)):
        return float("nan")
    if isinstance(v, np.ndarray) and np.iscomplexobj(v):
        return np.full(v.shape, np.nan)
    if isinstance(v, (list, tuple)):
        return type(v)(_real(x) for x in v)
    return v


def _clean(obj):
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite or complex numbers to None."""
    if obj is None:
        return None
    if isinstance(obj, (complex, np.complexfloating)):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj
