"""Choosing N and D from a law (docs/planning.md §2): law inversion, inference-aware and data-constrained
allocation, bootstrap intervals, and the same budget under other laws.

Pure functions of :class:`~scaling_planner.laws.ScalingLaw` objects and numbers; no file is read here (the plan
pipeline resolves law names first). N in parameters, D in tokens, C in FLOPs (C = 6·N·D unless the law says
otherwise, docs/planning.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from ..errors import ScalePlanError
from ..laws import ScalingLaw

C_RANGE = (1e10, 1e32)  # FLOPs: where law inversions search (docs/planning.md §2.4)


def _solve_log(f, lo, hi, target, it=200):
    """Bisection in log space for increasing f: f(x) = target."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(it):
        m = 0.5 * (a + b)
        if f(math.exp(m)) < target:
            a = m
        else:
            b = m
    return math.exp(0.5 * (a + b))


def optimal_for_params(law: ScalingLaw, N: float) -> float:
    """The compute C (FLOPs) at which ``law`` says N parameters are optimal."""
    return _solve_log(lambda C: float(law.optimal(C)[0]), *C_RANGE, N)


def optimal_for_tokens(law: ScalingLaw, D: float) -> float:
    """The compute C (FLOPs) at which ``law`` says D tokens are optimal."""
    return _solve_log(lambda C: float(law.optimal(C)[1]), *C_RANGE, D)


def compute_for_loss(law: ScalingLaw, target: float) -> float:
    """The smallest C (FLOPs) whose compute-optimal allocation reaches loss ``target`` (docs/planning.md §2.4)."""
    if not law.has_loss:
        raise ScalePlanError(f"target_loss needs a law that predicts loss; {law.name} is an allocation rule",
                             param="target_loss")
    floor = law.params.get("E")
    if floor is not None and target <= floor:
        raise ScalePlanError(f"target_loss {target:g} is at or below the law's irreducible loss E = {floor:.4g}",
                             param="target_loss")

    def loss_at(C):
        N, D = law.optimal(C)
        return -float(law.loss(N, D))

    C = _solve_log(loss_at, *C_RANGE, -target)
    if C > 0.99 * C_RANGE[1]:
        raise ScalePlanError(f"target_loss {target:g} is not reachable below 1e32 FLOPs with {law.name}",
                             param="target_loss")
    return C


def _parametric(law: ScalingLaw, param: str, example: str = "") -> None:
    if law.form not in ("chinchilla", "data_constrained"):
        raise ScalePlanError(f"{param} needs a parametric law (E + A/N^alpha + B/D^beta){example}", param=param)


def inference_aware(law: ScalingLaw, C: float, inference_tokens: float) -> dict:
    """Sardana et al. 2024 (docs/planning.md §2.5): the N, D_train that reach the compute-optimal loss at C with the
    least lifetime FLOPs 6·N·D_train + 2·N·D_inference, over 4,000 log-spaced N in [N_opt/50, N_opt]."""
    _parametric(law, "inference_tokens", ", e.g. epoch2024")
    p = law.params
    N0, D0 = law.optimal(C)
    target = float(law.loss(N0, D0))
    Ns = np.geomspace(N0 / 50, N0, 4000)
    gap = target - p["E"] - p["A"] / Ns ** p["alpha"]
    ok = gap > 0
    Ns = Ns[ok]
    Dtr = (p["B"] / gap[ok]) ** (1 / p["beta"])
    total = 6 * Ns * Dtr + 2 * Ns * inference_tokens
    i = int(np.argmin(total))
    base = 6 * N0 * D0 + 2 * N0 * inference_tokens
    return {"params": float(Ns[i]), "tokens": float(Dtr[i]), "loss": target, "train_flops": float(6 * Ns[i] * Dtr[i]),
            "lifetime_flops": float(total[i]), "chinchilla_lifetime_flops": float(base),
            "saving_fraction": float(1 - total[i] / base), "chinchilla_params": float(N0)}


def repeated_data_loss(law: ScalingLaw, repetition: Mapping[str, float], N, D, unique_tokens: float):
    """Loss of N params trained on D tokens drawn from ``unique_tokens`` unique ones: ``law``'s E, A, B, alpha, beta
    at Muennighoff et al.'s effective N', D' with the decay constants ``repetition`` (``R_D_star``, ``R_N_star``;
    docs/planning.md §2.6)."""
    merged = replace(law, form="data_constrained", params={**law.params, "R_D_star": repetition["R_D_star"],
                                                            "R_N_star": repetition["R_N_star"]})
    return merged.loss(N, D, unique_tokens=unique_tokens)


def data_constrained(law: ScalingLaw, C: float, unique_tokens: float, repetition: Mapping[str, float]) -> dict:
    """Muennighoff et al. 2023 (docs/planning.md §2.6): allocate C when the data has only ``unique_tokens``.

    ``repetition`` holds the decay constants ``R_D_star`` and ``R_N_star`` (e.g. the ``params`` of the
    ``muennighoff2023`` law: 15.4 and 5.3). Over 3,000 log-spaced N in [N_opt/30, 30·N_opt] with D = C/(6N), the N
    that minimises :func:`repeated_data_loss`."""
    _parametric(law, "unique_tokens")
    N0, D0 = law.optimal(C)
    Ns = np.geomspace(N0 / 30, N0 * 30, 3000)
    Ds = C / (6 * Ns)
    L = np.asarray(repeated_data_loss(law, repetition, Ns, Ds, unique_tokens))
    i = int(np.argmin(L))
    return {"params": float(Ns[i]), "tokens": float(Ds[i]), "loss": float(L[i]),
            "epochs": float(Ds[i] / unique_tokens), "unconstrained_params": float(N0),
            "unconstrained_tokens": float(D0)}


def law_interval(law: ScalingLaw, C: float, fixed: tuple[float, float] | None = None) -> dict:
    """95% range (2.5th-97.5th percentiles) over the law's bootstrap samples, empty when it has none
    (docs/planning.md §2.7): of N_opt, D_opt, D/N and the loss at C (needs >= 10 valid replicates), or — when N and D
    were fixed by the caller or by an inference-aware / data-constrained allocation — of the loss at those ``fixed``
    (N, D) only."""
    laws = law.sample_laws()
    if not laws:
        return {}
    q = lambda x: [float(v) for v in np.nanpercentile(x, [2.5, 97.5])]  # noqa: E731
    if fixed is not None:
        if not law.has_loss:
            return {}
        Ls = [float(lw.loss(*fixed)) for lw in laws]
        return {"loss": q(Ls), "samples": len(Ls), "source": "law's bootstrap samples (loss at the chosen N, D)"}
    Ns, Ds, Ls = [], [], []
    for lw in laws:
        try:
            n, d = lw.optimal(C)
        except (ScalePlanError, FloatingPointError, ZeroDivisionError):
            continue
        if np.isfinite(n) and np.isfinite(d) and n > 0:
            Ns.append(n)
            Ds.append(d)
            Ls.append(lw.loss(n, d) if lw.has_loss else np.nan)
    if len(Ns) < 10:
        return {}
    out = {"params": q(Ns), "tokens": q(Ds), "tokens_per_param": q(np.array(Ds) / np.array(Ns)),
           "samples": len(Ns), "source": "law's bootstrap samples"}
    if law.has_loss:
        out["loss"] = q(Ls)
    return out


def compare_laws(laws: Sequence[ScalingLaw], C: float) -> list[dict]:
    """The compute-optimal (N, D) and loss at C under each of ``laws``, with the law's N convention
    (docs/planning.md §2.7; losses are in each law's own data units)."""
    out = []
    for lw in laws:
        N, D = lw.optimal(C)
        out.append({"law": lw.name, "params": float(N), "tokens": float(D), "tokens_per_param": float(D / N),
                    "loss": float(lw.loss(N, D)) if lw.has_loss else None,
                    "N_counts": lw.conventions.get("N", "?").split(" ")[0]})
    return out
