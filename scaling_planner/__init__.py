"""scaleplan: plan language-model training from scaling laws.

Public API (lazy re-exports, so ``import scaling_planner`` and the CLI start fast)::

    from scaling_planner import load_runs, load_law, fit, plan_budget, estimate_memory, get_gpu, ModelShape
    from scaling_planner import load_run_groups, fit_groups   # one fit per condition (--group-by)
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "ScalePlanError": "errors",
    "parse_quantity": "units", "PF_DAY": "units",
    "RunTable": "runs", "load_runs": "io.runlog", "from_arrays": "io.runlog",
    "ScalingLaw": "laws", "load_law": "io.law_file", "list_laws": "io.law_file", "law_names": "io.law_file",
    "fit": "fitting", "FitResult": "fitting", "FitReport": "fitting",
    "fit_groups": "fitting", "GroupedFitReport": "fitting", "load_run_groups": "io.runlog",
    "ModelShape": "model", "get_preset": "model", "shape_for_params": "model", "from_hf_config": "io.hf_config",
    "MemoryConfig": "memory", "estimate_memory": "memory", "MemoryEstimate": "memory",
    "GPU": "hardware", "get_gpu": "hardware", "list_gpus": "hardware",
    "plan_budget": "planner", "Plan": "planner",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        mod = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'scaling_planner' has no attribute {name!r}")
