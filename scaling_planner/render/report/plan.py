"""The plan report: what a Plan holds, as summary, tables, figures and warnings."""

from __future__ import annotations

from ...units import GIB, fmt_count
from .document import Figure, Report, Table


def plan_content(plan, command: str = "") -> Report:
    from . import plots

    d = plan.to_dict()
    rep = Report(title=f"Training plan: {d['flops']:.3g} FLOPs on {plan.gpu.name}", command=command)
    L = d["layout"]
    rep.summary = [("law", d["law"]), ("params", f"{fmt_count(d['params'])}"), ("tokens", fmt_count(d["tokens"])),
                   ("tokens/param", f"{d['tokens_per_param']:.1f}"), ("predicted loss", d["loss"]),
                   ("GPUs", f"{L['gpus']} x {plan.gpu.name}"),
                   ("layout", f"TP {L['tp']} x PP {L['pp']} x DP {L['dp']}, ZeRO-{L['zero_stage']}, "
                              f"micro-batch {L['micro_batch']} x accumulation {L['grad_accum']}"),
                   ("wall-clock", f"{d['days']:.1f} days"), ("GPU-hours", f"{d['gpu_hours']:,.0f}"),
                   ("cost", "—" if d["cost_usd"] is None else f"${d['cost_usd']:,.0f}"),
                   ("MFU / goodput", f"{d['mfu']:.2f} / {d['goodput']:.2f} ({d['mfu_counts']})")]
    if d["interval"]:
        iv = d["interval"]
        rep.summary.append(("95% interval (law samples)", f"params {fmt_count(iv['params'][0])}–"
                            f"{fmt_count(iv['params'][1])}, tokens {fmt_count(iv['tokens'][0])}–"
                            f"{fmt_count(iv['tokens'][1])}"))
    s = d["shape"]
    rep.tables.append(Table("model shape", list(s), [list(s.values())]))
    rep.tables.append(Table("the same budget under other laws", ["law", "params", "tokens", "tokens/param", "loss"],
                            [[d["law"], fmt_count(d["params"]), fmt_count(d["tokens"]), d["tokens_per_param"],
                              d["loss"]]] +
                            [[c["law"], fmt_count(c["params"]), fmt_count(c["tokens"]), c["tokens_per_param"],
                              c["loss"]] for c in d["comparison"]]))
    rep.tables.append(Table("layouts", ["", "TP", "PP", "DP", "ZeRO", "micro-batch", "recompute", "GiB/GPU", "days",
                                        "note"],
                            [["chosen", L["tp"], L["pp"], L["dp"], L["zero_stage"], L["micro_batch"], L["recompute"],
                              L["memory_per_gpu_gib"], d["days"], "best predicted throughput"]] +
                            [["alternative", a["tp"], a["pp"], a["dp"], a["zero_stage"], a["micro_batch"],
                              a["recompute"], a["memory_per_gpu_gib"], a["days"], a["why_lost"]]
                             for a in d["alternatives"]]))
    # figures: memory per layout, time and cost vs GPUs
    from ...memory import MemoryConfig, estimate_memory

    labels, bds = [], []
    for tag, lay in [("chosen", L)] + [(f"alt {i + 1}", a) for i, a in enumerate(d["alternatives"])]:
        est = estimate_memory(plan.shape, MemoryConfig(framework="megatron", gpus=lay["gpus"], tp=lay["tp"],
                                                       pp=lay["pp"], dp=lay["dp"], zero=lay["zero_stage"],
                                                       sp=lay["sequence_parallel"], seq_len=plan.seq_len,
                                                       micro_batch=lay["micro_batch"], grad_accum=lay["grad_accum"],
                                                       recompute=lay["recompute"]), plan.gpu, suggest=False)
        labels.append(f"{tag}: TP{lay['tp']} PP{lay['pp']} Z{lay['zero_stage']} mb{lay['micro_batch']}")
        bds.append({k: v / GIB for k, v in est.breakdown.items()})
    rep.figures.append(Figure(plots.plot_memory_bars(labels, bds, plan.gpu.memory_gib, "per-GPU memory by layout"),
                              "Per-GPU device memory (GiB) of the chosen and alternative layouts at their peak "
                              "phase; dashed: usable memory.", "memory per layout", "plan_memory"))
    counts, days, costs = _scan_gpus(plan)
    rep.figures.append(Figure(plots.plot_time_cost(counts, days, costs, L["gpus"]),
                              "Wall-clock days and cost vs GPU count, best layout at each count (MFU scaled by the "
                              "throughput model; same goodput).", "time and cost vs GPUs", "plan_time"))
    rep.warnings = list(d["notes"])
    rep.assumptions = [(k, v) for k, v in d["assumptions"].items()]
    return rep


def _scan_gpus(plan):
    from ...planner import search_layouts

    g = plan.gpu
    base = plan.layout.gpus
    counts = sorted({max(8, int(base * f) // 8 * 8) for f in (0.25, 0.5, 1, 2, 4)} | {base})
    peak = g.peak_tflops("bf16") * 1e12
    best_eff = plan.layout.efficiency
    out_c, out_d, out_cost = [], [], []
    for n in counts:
        lays = search_layouts(plan.shape, g, n, plan.global_batch, plan.seq_len, plan.mfu,
                              plan.assumptions["gpus_per_node"], max_results=1)
        if not lays:
            continue
        mfu = plan.mfu * lays[0].efficiency / best_eff
        dd = plan.flops / (n * peak * mfu * plan.goodput) / 86400
        out_c.append(n)
        out_d.append(dd)
        out_cost.append(None if plan.price is None else dd * 24 * n * plan.price)
    return out_c, out_d, out_cost
