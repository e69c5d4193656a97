"""Compute planner (docs/planning.md): budget -> (N, D) from a law -> model shape -> memory-checked parallel layout
-> time and cost.

Modules, one idea each:

* :mod:`.defaults`   every default with its source (MFU table, goodput, caps, DeepSeek batch/LR laws, search space)
* :mod:`.allocation` N and D from a law: inversion, inference-aware, data-constrained, intervals, comparison
* :mod:`.steptime`   the step-time model: one optimizer step of a layout from its GEMMs, memory-bound kernels and
                     communication (predicted MFU, HFU, time breakdown; docs/planning.md §5.4)
* :mod:`.timing`     a layout's step (the one call into the step-time model) and the days formulas
* :mod:`.layout`     Layout, the candidate generators, the memory filter, ranking, why an alternative lost
* :mod:`.plan`       Plan and plan_budget, a pipeline of named steps
"""

from __future__ import annotations

from .allocation import (
    compare_laws,
    compute_for_loss,
    data_constrained,
    inference_aware,
    law_interval,
    optimal_for_params,
    optimal_for_tokens,
)
from .defaults import (
    DEFAULT_DAYS,
    DEFAULT_LAW,
    MAX_GPUS,
    MAX_PARAMS,
    MFU_DEFAULTS,
    MFU_FALLBACK,
    MIN_PARAMS,
    SECONDS_PER_DAY,
    default_mfu,
)
from .layout import Layout, search_layouts, why_lost
from .plan import Plan, ScanPoint, plan_budget
from .steptime import StepTime, step_time
from .timing import layout_step

__all__ = [
    "DEFAULT_DAYS", "DEFAULT_LAW", "MAX_GPUS", "MAX_PARAMS", "MFU_DEFAULTS", "MFU_FALLBACK", "MIN_PARAMS",
    "SECONDS_PER_DAY", "Layout", "Plan", "ScanPoint", "compare_laws", "compute_for_loss", "data_constrained",
    "default_mfu", "inference_aware", "law_interval", "optimal_for_params", "optimal_for_tokens", "plan_budget",
    "search_layouts", "StepTime", "step_time", "layout_step", "why_lost",
]
