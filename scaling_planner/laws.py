"""Scaling laws: one small set of forms, each answering ``loss(N, D)`` and ``optimal(C)``.

Forms (``ScalingLaw.form``) and their parameters:

* ``chinchilla``  L(N, D) = E + A/N^alpha + B/D^beta  (Hoffmann et al. 2022, Eq. 2). Compute-optimal allocation
  under C = 6·N·D in closed form (Eq. 4): N_opt = G·(C/6)^a, D_opt = G^-1·(C/6)^b, G = (alpha·A/(beta·B))^(1/(alpha+beta)),
  a = beta/(alpha+beta), b = alpha/(alpha+beta).
* ``kaplan_joint`` L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (Kaplan et al. 2020, Eq. 1.5).
* ``power``       single-variable L(X) = E + (X_c/X)^alpha, X in {N, D, C}; E = 0 is Kaplan's pure power law.
* ``allocation``  N_opt = k_N·C^a, D_opt = k_D·C^b (C in ``C_unit``); no loss. DeepSeek's form gives k_M for the
  non-embedding FLOPs/token M instead; then N = M/6.
* ``data_constrained`` Muennighoff et al. 2023: the Chinchilla form on effective N', D' for repeated data.

Each formula has one home, a module-level function below (``chinchilla_loss``, ``chinchilla_G``,
``chinchilla_allocation``/``chinchilla_optimal``, ``kaplan_joint_loss``, ``power_value``, ``allocation_value``,
``repetition_terms``/``repetition_effective``/``data_constrained_effective``, ...);
:class:`ScalingLaw`, the fitters, the holdout check and the figures call them (docs/fitting.md §2).

Units: N parameters (total or non-embedding, see ``conventions["N"]``), D tokens, C FLOPs unless ``C_unit`` says
PF-days (1 PF-day = 8.64e19 FLOPs). Loss in nats/token on the law's own data and tokenizer: absolute losses do not
transfer across data sets (Kaplan Sec. 1.2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ScalePlanError
from .units import PF_DAY

SCHEMA = "scaleplan.law/1"
FORMS = {
    "chinchilla": ("E", "A", "B", "alpha", "beta"),
    "kaplan_joint": ("N_c", "D_c", "alpha_N", "alpha_D"),
    "power": ("X_c", "alpha"),
    "allocation": ("a", "b"),
    "data_constrained": ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"),
}
_KNOWN_FIELDS = {"schema", "name", "title", "form", "params", "variable", "C_unit", "allocation", "components",
                 "conventions", "citation", "notes", "ci95", "fit", "samples"}


def _c_factor(unit: str | None) -> float:
    if unit in (None, "FLOPs", "flops"):
        return 1.0
    if unit in ("PF-days", "pf-days"):
        return PF_DAY
    raise ScalePlanError(f"unknown C_unit {unit!r}: use 'FLOPs' or 'PF-days'")


# ---------------------------------------------------------------------------------------------- law formulas
# The one home of every law formula: ScalingLaw, the fitters (fitting/), the holdout check and the figures
# (render/report/plots.py) all call these, through this module's attributes. N in parameters, D in tokens, C in
# FLOPs (C = 6·N·D), loss in the law's own units. Arrays broadcast.


def chinchilla_loss(N, D, E, A, B, alpha, beta):
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2). ``D=None``: infinite data (no data term)."""
    data_term = 0.0 if D is None else B / np.asarray(D, dtype=float) ** beta
    return E + A / np.asarray(N, dtype=float) ** alpha + data_term


def chinchilla_exponents(alpha, beta):
    """(a, b) with N_opt ∝ C^a, D_opt ∝ C^b: a = beta/(alpha+beta), b = alpha/(alpha+beta) (Hoffmann Eq. 4)."""
    return beta / (alpha + beta), alpha / (alpha + beta)


def chinchilla_G(A, B, alpha, beta):
    """G = (alpha·A/(beta·B))^(1/(alpha+beta)), the scale of the Chinchilla optimum (Hoffmann et al. 2022, Eq. 4)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.asarray(alpha * A / (beta * B), dtype=float) ** (1.0 / (alpha + beta))


def chinchilla_allocation(C, A, B, alpha, beta):
    """Compute-optimal (N, D) of E + A/N^alpha + B/D^beta under C = 6ND, unchecked (non-finite where the parameters
    give no optimum): N_opt = G·(C/6)^a, D_opt = G^-1·(C/6)^b (Hoffmann et al. 2022, Eq. 4; docs/fitting.md §2.2)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        G = chinchilla_G(A, B, alpha, beta)
        a, b = chinchilla_exponents(alpha, beta)
        C6 = np.asarray(C, dtype=float) / 6.0
        return G * C6**a, C6**b / G


def chinchilla_optimal(C, E, A, B, alpha, beta):
    """Closed-form compute-optimal (N, D) for E + A/N^alpha + B/D^beta under C = 6ND (Hoffmann Eq. 4); a
    ScalePlanError when the parameters give no finite optimum."""
    N, D = chinchilla_allocation(C, A, B, alpha, beta)
    if not (np.all(np.isfinite(N)) and np.all(np.isfinite(D)) and np.all(N > 0) and np.all(D > 0)):
        raise ScalePlanError(f"the law's parameters (A={A:g}, B={B:g}, alpha={alpha:g}, beta={beta:g}) give no finite "
                             "compute-optimal N and D; check the law file")
    return N, D


def kaplan_joint_loss(N, D, N_c, D_c, alpha_N, alpha_D):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, Eq. 1.5)."""
    r = alpha_N / alpha_D
    return ((N_c / np.asarray(N, dtype=float)) ** r + D_c / np.asarray(D, dtype=float)) ** alpha_D


def kaplan_joint_log_loss(N, D, N_c, D_c, alpha_N, alpha_D):
    """log of :func:`kaplan_joint_loss`, computed in log space (no overflow for large N_c, D_c)."""
    r = alpha_N / alpha_D
    with np.errstate(all="ignore"):
        return alpha_D * np.logaddexp(r * (np.log(N_c) - np.log(N)), np.log(D_c) - np.log(D))


def kaplan_joint_exponents(alpha_N, alpha_D):
    """(a, b) of the Kaplan joint law's optimum: a = 1/(r+1), b = r/(r+1), r = alpha_N/alpha_D."""
    r = alpha_N / alpha_D
    return 1 / (r + 1), r / (r + 1)


def kaplan_joint_optimal(C, N_c, D_c, alpha_N, alpha_D):
    """Compute-optimal (N, D) of the Kaplan joint law under C = 6ND: minimising Eq. 1.5 along D = C/(6N) gives
    N^(r+1) = r·N_c^r·C/(6·D_c), r = alpha_N/alpha_D."""
    r = alpha_N / alpha_D
    C = np.asarray(C, dtype=float)
    N = (r * N_c**r * C / (6.0 * D_c)) ** (1.0 / (r + 1.0))
    return N, C / (6.0 * N)


def power_value(X, X_c, alpha, E=0.0):
    """Kaplan single-variable law E + (X_c/X)^alpha (Kaplan et al. 2020, Eqs. 1.1-1.3; E = 0 there)."""
    return E + (X_c / np.asarray(X, dtype=float)) ** alpha


def allocation_value(C, k, exponent):
    """A power-law allocation k·C^exponent: N_opt = k_N·C^a or D_opt = k_D·C^b (Hoffmann Approaches 1 and 2)."""
    return k * np.asarray(C, dtype=float) ** exponent


def repetition_terms(N, D, unique_tokens, A, B, alpha, beta):
    """(U_N, R_N, U_D, R_D) of Muennighoff et al. 2023 Eq. 5 for N params trained on D tokens drawn from
    ``unique_tokens`` unique ones (docs/fitting.md §2.5): U_D = min(U, D), R_D = max(D/U_D − 1, 0) (repetitions beyond
    the first epoch); U_N = min(N, N_opt(U_D)), the Chinchilla-optimal size for U_D tokens, N_opt(D) = G·(D·G)^(β/α)
    (datablations README ``D_to_N``), and R_N = max(N/U_N − 1, 0) (excess parameters)."""
    N, D, U = (np.asarray(x, dtype=float) for x in (N, D, unique_tokens))
    U_D = np.minimum(U, D)
    R_D = np.maximum(D / U_D - 1.0, 0.0)
    G = chinchilla_G(A, B, alpha, beta)
    with np.errstate(over="ignore"):
        U_N = np.minimum(N, (U_D * G) ** (beta / alpha) * G)
    R_N = np.maximum(N / U_N - 1.0, 0.0)
    return U_N, R_N, U_D, R_D


def repetition_effective(U, R, R_star):
    """Effective count U + U·R*·(1 − exp(−R/R*)) of U unique items repeated R extra times (Muennighoff et al. 2023
    Eq. 5: D′ with U_D, R_D, R_D*; N′ with U_N, R_N, R_N*). R* is a decay constant: the k-th repetition is worth
    about exp(−k/R*) of a fresh item, so the effective count saturates at U·(1 + R*) as R → ∞."""
    U, R = np.asarray(U, dtype=float), np.asarray(R, dtype=float)
    return U + U * R_star * -np.expm1(-R / R_star)


def data_constrained_effective(N, D, unique_tokens, A, B, alpha, beta, R_D_star, R_N_star):
    """Muennighoff et al. 2023 effective (N′, D′) (Eq. 5; docs/fitting.md §2.5), from :func:`repetition_terms` and
    :func:`repetition_effective`. The loss is ``chinchilla_loss(N′, D′, ...)``."""
    U_N, R_N, U_D, R_D = repetition_terms(N, D, unique_tokens, A, B, alpha, beta)
    return repetition_effective(U_N, R_N, R_N_star), repetition_effective(U_D, R_D, R_D_star)


@dataclass(frozen=True)
class ScalingLaw:
    """A scaling law with its provenance. Build from JSON with :meth:`from_dict`, or get one from the catalogue
    with :func:`load_law`. ``params`` are at full published (or fitted) precision."""

    name: str
    form: str
    params: Mapping[str, float]
    title: str = ""
    variable: str | None = None  # for form 'power': which of N, D, C
    C_unit: str = "FLOPs"
    allocation: Mapping | None = None  # optional power-law allocation overriding the closed form
    components: Mapping[str, Mapping] = field(default_factory=dict)
    conventions: Mapping[str, str] = field(default_factory=dict)
    citation: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    ci95: Mapping[str, list] = field(default_factory=dict)
    fit: Mapping | None = None
    samples: Mapping[str, list] | None = None  # bootstrap replicates of params, for intervals downstream
    extra: Mapping = field(default_factory=dict)  # other top-level JSON fields (e.g. 'se'), kept on round trips

    # ----------------------------------------------------------------------------------------- predictions
    @property
    def has_loss(self) -> bool:
        return self.form != "allocation"

    @property
    def has_optimal(self) -> bool:
        return self.allocation is not None or self.form in ("chinchilla", "kaplan_joint", "allocation",
                                                            "data_constrained")

    def loss(self, N=None, D=None, unique_tokens=None, *, C=None):
        """Predicted loss. ``D=None`` means infinite data where the law allows it (or the law's L(N) component).
        An L(C) law reads ``C`` (FLOPs) when given, else C = 6·N·D."""
        p = self.params
        if self.form in ("chinchilla", "data_constrained"):
            if N is None:
                raise ScalePlanError(f"law {self.name}: loss needs N (params)")
            N = np.asarray(N, dtype=float)
            if self.form == "data_constrained" and unique_tokens is not None and D is not None:
                N, D = self.effective(N, D, unique_tokens)
            return _scalar(chinchilla_loss(N, D, p["E"], p["A"], p["B"], p["alpha"], p["beta"]))
        if self.form == "kaplan_joint":
            if N is None:
                raise ScalePlanError(f"law {self.name}: loss needs N (params)")
            if D is None:
                if "L_N" in self.components:
                    return self.component("L_N").loss(N=N)
                return _scalar(power_value(N, p["N_c"], p["alpha_N"]))
            return _scalar(kaplan_joint_loss(N, D, p["N_c"], p["D_c"], p["alpha_N"], p["alpha_D"]))
        if self.form == "power":
            E = p.get("E", 0.0)
            if self.variable == "N":
                x = N
            elif self.variable == "D":
                x = D
            elif C is not None:
                x = np.asarray(C, float) / _c_factor(self.C_unit)
            else:
                x = None if (N is None or D is None) else 6.0 * np.asarray(N, float) * np.asarray(D, float)
                x = None if x is None else x / _c_factor(self.C_unit)
            if x is None:
                raise ScalePlanError(f"law {self.name}: L({self.variable}) needs "
                                     + ("N" if self.variable == "N" else "D" if self.variable == "D" else "N and D"))
            return _scalar(power_value(x, p["X_c"], p["alpha"], E))
        raise ScalePlanError(f"law {self.name} ({self.form}) is an allocation rule and predicts no loss")

    def loss_at_compute(self, C):
        """Loss of a single-variable L(C) law at compute C (FLOPs)."""
        if self.form != "power" or self.variable != "C":
            raise ScalePlanError(f"law {self.name} is not an L(C) law")
        p = self.params
        return _scalar(power_value(np.asarray(C, float) / _c_factor(self.C_unit), p["X_c"], p["alpha"],
                                   p.get("E", 0.0)))

    def optimal(self, C):
        """Compute-optimal (N, D) for C FLOPs (arrays broadcast). C = 6·N·D unless the law's own rule says otherwise."""
        C = np.asarray(C, dtype=float)
        if self.allocation is not None or self.form == "allocation":
            al = self.allocation if self.allocation is not None else {**self.params, "C_unit": self.C_unit}
            Cu = C / _c_factor(al.get("C_unit", self.C_unit))
            if "k_M" in al:  # DeepSeek: M = non-embedding FLOPs/token, N ~ M/6
                N = allocation_value(Cu, al["k_M"], al["a"]) / 6.0
            else:
                N = allocation_value(Cu, al["k_N"], al["a"])
            D = allocation_value(Cu, al["k_D"], al["b"]) if "k_D" in al else C / (6.0 * N)
            return _scalar(N), _scalar(D)
        p = self.params
        if self.form in ("chinchilla", "data_constrained"):
            N, D = chinchilla_optimal(C, p["E"], p["A"], p["B"], p["alpha"], p["beta"])
            return _scalar(N), _scalar(D)
        if self.form == "kaplan_joint":
            N, D = kaplan_joint_optimal(C, p["N_c"], p["D_c"], p["alpha_N"], p["alpha_D"])
            return _scalar(N), _scalar(D)
        raise ScalePlanError(f"law {self.name} ({self.form}, L({self.variable})) has no compute-optimal allocation")

    def exponents(self) -> dict[str, float]:
        """Allocation exponents a (N_opt ∝ C^a) and b (D_opt ∝ C^b) where defined."""
        if self.allocation is not None:
            return {"a": self.allocation["a"], "b": self.allocation.get("b", 1 - self.allocation["a"])}
        p = self.params
        if self.form in ("chinchilla", "data_constrained"):
            a, b = chinchilla_exponents(p["alpha"], p["beta"])
            return {"a": a, "b": b}
        if self.form == "allocation":
            return {"a": p["a"], "b": p["b"]}
        if self.form == "kaplan_joint":
            a, b = kaplan_joint_exponents(p["alpha_N"], p["alpha_D"])
            return {"a": a, "b": b}
        return {}

    def effective(self, N, D, unique_tokens):
        """Muennighoff et al. 2023 effective (N', D') for D tokens drawn from ``unique_tokens`` unique ones
        (:func:`data_constrained_effective`)."""
        p = self.params
        return data_constrained_effective(N, D, unique_tokens, p["A"], p["B"], p["alpha"], p["beta"], p["R_D_star"],
                                          p["R_N_star"])

    def component(self, key: str) -> ScalingLaw:
        """A named sub-law, e.g. Kaplan's ``L_N`` (Table 5) inside ``kaplan2020``."""
        if key not in self.components:
            raise ScalePlanError(f"law {self.name} has no component {key!r}; it has "
                                 + (", ".join(self.components) or "none"))
        c = dict(self.components[key])
        return ScalingLaw(name=f"{self.name}:{key}", form=c["form"], params=c["params"], variable=c.get("variable"),
                          C_unit=c.get("C_unit", "FLOPs"), conventions=self.conventions, citation=self.citation,
                          title=c.get("title", key))

    def with_params(self, params: Mapping[str, float]) -> ScalingLaw:
        from dataclasses import replace

        return replace(self, params=dict(params))

    def sample_laws(self, max_n: int | None = None) -> list[ScalingLaw]:
        """One law per stored bootstrap replicate (empty when the law carries no samples)."""
        if not self.samples:
            return []
        keys = list(self.samples)
        n = len(self.samples[keys[0]])
        idx = range(n) if max_n is None or max_n >= n else np.linspace(0, n - 1, max_n).astype(int)
        return [self.with_params({**self.params, **{k: float(self.samples[k][i]) for k in keys}}) for i in idx]

    # ----------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        d = {"schema": SCHEMA, "name": self.name, "title": self.title, "form": self.form,
             "params": {k: float(v) for k, v in self.params.items()}}
        if self.variable:
            d["variable"] = self.variable
        d["C_unit"] = self.C_unit
        if self.allocation is not None:
            d["allocation"] = dict(self.allocation)
        if self.components:
            d["components"] = {k: dict(v) for k, v in self.components.items()}
        d["conventions"] = dict(self.conventions)
        d["citation"] = dict(self.citation)
        d["notes"] = list(self.notes)
        if self.ci95:
            d["ci95"] = {k: [float(x) for x in v] for k, v in self.ci95.items()}
        if self.fit is not None:
            d["fit"] = self.fit
        if self.samples:
            d["samples"] = {k: [float(x) for x in v] for k, v in self.samples.items()}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "<dict>") -> ScalingLaw:
        if not isinstance(d, Mapping):
            raise ScalePlanError(f"{source}: a law file must hold one JSON object")
        for key in ("name", "form", "params"):
            if key not in d:
                raise ScalePlanError(f"{source}: missing field {key!r} (a law needs name, form, params)")
        form = d["form"]
        if not isinstance(form, str) or form not in FORMS:
            raise ScalePlanError(f"{source}: unknown form {json.dumps(form)}; known forms: {', '.join(FORMS)}")
        params = _check_params(d["params"], form, source, "params")
        if form == "power" and d.get("variable") not in ("N", "D", "C"):
            raise ScalePlanError(f"{source}: a 'power' law needs field 'variable': N, D or C")
        if form == "allocation" and not ({"k_N", "k_M"} & set(params)):
            raise ScalePlanError(f"{source}: an allocation law needs params.k_N (or params.k_M)")
        _c_factor_field(d.get("C_unit", "FLOPs"), source, "C_unit")
        alloc = d.get("allocation")
        if alloc is not None:
            if not isinstance(alloc, Mapping) or "a" not in alloc or not ({"k_N", "k_M"} & set(alloc)):
                raise ScalePlanError(f"{source}: 'allocation' must be an object with a and k_N (or k_M)")
            nums = {k: v for k, v in alloc.items() if k in ("k_N", "k_M", "a", "k_D", "b")}
            _check_params(nums, "", source, "allocation")  # b is optional here (b = 1 - a)
            _c_factor_field(alloc.get("C_unit", d.get("C_unit", "FLOPs")), source, "allocation.C_unit")
        comps = d.get("components", {})
        if not isinstance(comps, Mapping):
            raise ScalePlanError(f"{source}: 'components' must be an object of name: law")
        for key, c in comps.items():
            if not isinstance(c, Mapping) or "form" not in c or "params" not in c:
                raise ScalePlanError(f"{source}: components.{key} needs 'form' and 'params'")
            if c["form"] == "power" and c.get("variable") == "L":
                continue  # B_crit(L) (Kaplan Eq. 1.4): a documented table entry, not a loss law
            if c["form"] not in FORMS:
                raise ScalePlanError(f"{source}: components.{key}.form {c['form']!r} is unknown; known forms: "
                                     f"{', '.join(FORMS)}")
            _check_params(c["params"], c["form"], source, f"components.{key}.params")
            _c_factor_field(c.get("C_unit", "FLOPs"), source, f"components.{key}.C_unit")
        _check_samples(d.get("samples"), d.get("ci95", {}), params, source)
        return cls(name=str(d["name"]), form=form, params=params, title=d.get("title", ""),
                   variable=d.get("variable"), C_unit=d.get("C_unit", "FLOPs"), allocation=d.get("allocation"),
                   components=d.get("components", {}), conventions=d.get("conventions", {}),
                   citation=d.get("citation", {}), notes=tuple(d.get("notes", ())), ci95=d.get("ci95", {}),
                   fit=d.get("fit"), samples=d.get("samples"),
                   extra={k: v for k, v in d.items() if k not in _KNOWN_FIELDS})

    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write the law as JSON (:func:`scaling_planner.io.law_file.save_law`)."""
        from .io.law_file import save_law

        return save_law(self, path, force=force)

    def summary(self) -> str:
        """One-line formula with the parameters."""
        p = self.params
        if self.form == "chinchilla":
            return (f"L = {p['E']:g} + {p['A']:g}/N^{p['alpha']:g} + {p['B']:g}/D^{p['beta']:g}")
        if self.form == "data_constrained":
            return (f"L = {p['E']:.4g} + {p['A']:.4g}/N'^{p['alpha']:.4g} + {p['B']:.4g}/D'^{p['beta']:.4g}, "
                    f"R_D*={p['R_D_star']:.4g}, R_N*={p['R_N_star']:.4g}")
        if self.form == "kaplan_joint":
            return (f"L = [({p['N_c']:g}/N)^({p['alpha_N']:g}/{p['alpha_D']:g}) + {p['D_c']:g}/D]^{p['alpha_D']:g}")
        if self.form == "power":
            unit = f" [{self.C_unit}]" if self.variable == "C" else ""
            e = f"{p['E']:g} + " if p.get("E") else ""
            return f"L = {e}({p['X_c']:g}/{self.variable}{unit})^{p['alpha']:g}"
        k = f"{p['k_M']:g}·C^{p['a']:g}/6" if "k_M" in p else f"{p['k_N']:g}·C^{p['a']:g}"
        kd = f", D_opt = {p['k_D']:g}·C^{p['b']:g}" if "k_D" in p else ""
        return f"N_opt = {k}{kd} (C in {self.C_unit})"


# Valid ranges of every parameter, by form (the closed forms divide by these or raise them to powers).
_POSITIVE = {"A", "B", "alpha", "beta", "N_c", "D_c", "alpha_N", "alpha_D", "X_c", "k_N", "k_M", "k_D", "a", "b",
             "R_D_star", "R_N_star"}
_NONNEGATIVE = {"E"}


def _check_params(params, form: str, source: str, where: str) -> dict[str, float]:
    """Validate a law's params: the form's required names present, every value a finite number in its range.

    Raises a one-line ScalePlanError naming the field (``params.alpha must be > 0``)."""
    if not isinstance(params, Mapping):
        raise ScalePlanError(f"{source}: '{where}' must be an object of name: number")
    missing = [k for k in FORMS.get(form, ()) if k not in params]
    if missing:
        raise ScalePlanError(f"{source}: form {form!r} needs {', '.join(f'{where}.{k}' for k in missing)}")
    out = {}
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ScalePlanError(f"{source}: {where}.{k} must be a number, got {json.dumps(v)}")
        v = float(v)
        if not math.isfinite(v):
            raise ScalePlanError(f"{source}: {where}.{k} must be a finite number, got {v}")
        if k in _POSITIVE and v <= 0:
            raise ScalePlanError(f"{source}: {where}.{k} must be > 0, got {v:g}")
        if k in _NONNEGATIVE and v < 0:
            raise ScalePlanError(f"{source}: {where}.{k} must be >= 0, got {v:g}")
        out[k] = v
    return out


def _check_samples(samples, ci95, params: Mapping, source: str) -> None:
    """``samples``: equal-length lists of finite numbers for known params; ``ci95``: [low, high] pairs."""
    if not isinstance(ci95, Mapping) or not all(
            isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
            for v in ci95.values()):
        raise ScalePlanError(f"{source}: 'ci95' must be an object of name: [low, high]")
    if samples is None:
        return
    if not isinstance(samples, Mapping) or not samples:
        raise ScalePlanError(f"{source}: 'samples' must be an object of param name: list of numbers")
    lengths = set()
    for k, v in samples.items():
        if k not in params:
            raise ScalePlanError(f"{source}: samples.{k} is not one of the law's params ({', '.join(params)})")
        if not isinstance(v, list) or not v or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise ScalePlanError(f"{source}: samples.{k} must be a non-empty list of finite numbers")
        lengths.add(len(v))
    if len(lengths) > 1:
        raise ScalePlanError(f"{source}: every samples list must have the same length (got {sorted(lengths)})")


def _c_factor_field(unit, source: str, where: str) -> float:
    try:
        return _c_factor(unit)
    except ScalePlanError:
        raise ScalePlanError(f"{source}: {where} {unit!r} is unknown; use 'FLOPs' or 'PF-days'") from None


def _scalar(x):
    a = np.asarray(x)
    return float(a) if a.ndim == 0 else a
