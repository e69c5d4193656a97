"""The memory report: a MemoryEstimate's breakdown, what-ifs and assumptions."""

from __future__ import annotations

from ...units import GIB
from .document import Figure, Report, Table


def memory_content(est, command: str = "") -> Report:
    from . import plots

    d = est.to_dict()
    rep = Report(title=f"Training memory: {est.shape.name}", command=command)
    rep.summary = [("model", est.shape.name), ("params (total / trainable)",
                                               f"{est.params_total:,} / {est.params_trainable:,}"),
                   (f"per-GPU {est.config.peak_kind} peak", f"{est.total_gib:.2f} GiB"),
                   ("peak phase", est.peak_phase)]
    if est.gpu_name:
        rep.summary.append(("GPU", f"{est.gpu_name}, {est.gpu_memory_gib:.1f} GiB usable: "
                            + ("fits" if est.fits else "does NOT fit")))
    rows = [[k, f"{v:.3f}"] for k, v in d["per_gpu_gib"].items()]
    rep.tables.append(Table("per-GPU breakdown (GiB)", ["component", "GiB"], rows))
    if est.suggestions:
        rep.tables.append(Table("changes", ["change", "device GiB", "fits"],
                                [[s["change"], s["total_gib"], s["fits"]] for s in est.suggestions]))
    labels = ["this config"] + [s["change"] for s in est.suggestions]
    bds = [{k: v / GIB for k, v in est.breakdown.items()}] + [s["breakdown_gib"] for s in est.suggestions]
    rep.figures.append(Figure(plots.plot_memory_bars(labels, bds, est.gpu_memory_gib, "per-GPU memory and what-ifs"),
                              "Stacked per-GPU device memory (GiB = 2^30 B) at the peak phase of this configuration "
                              "and of each suggested change; dashed line: the GPU's usable memory.",
                              "memory breakdown bar chart", "memory"))
    rep.assumptions = [(k, v) for k, v in d["assumptions"].items()]
    return rep
