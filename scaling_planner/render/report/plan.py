"""The plan report: what a Plan holds, as summary, tables, figures and warnings. It draws only what the Plan holds
(layouts with their memory estimates, the GPU-count scan when the plan has one) and computes nothing."""

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
                              f"micro-batch {L['micro_batch']} x accumulation {L['grad_accum']}, recompute "
                              f"{L['recompute']} ({d['framework']})"),
                   ("step", f"{d['step_time_s']:.3g} s, {fmt_count(d['tokens_per_s'])} tokens/s"),
                   ("wall-clock", f"{d['days']:.1f} days"), ("GPU-hours", f"{d['gpu_hours']:,.0f}"),
                   ("cost", "—" if d["cost_usd"] is None else f"${d['cost_usd']:,.0f}"),
                   ("MFU / goodput", f"{d['mfu']:.2f} / {d['goodput']:.2f} ({d['mfu_counts']}; "
                                     f"{plan.assumptions['mfu_source']})"),
                   ("HFU", "—" if d["hfu"] is None else f"{d['hfu']:.2f}")]
    iv = d["interval"] or {}
    spans = [f"{k} {fmt_count(iv[k][0])}–{fmt_count(iv[k][1])}" for k in ("params", "tokens") if k in iv]
    if "loss" in iv:
        spans.append(f"loss {iv['loss'][0]:.3f}–{iv['loss'][1]:.3f}")
    if spans:  # with N or D fixed the law's samples only spread the loss
        rep.summary.append(("95% interval (law samples)", ", ".join(spans)))
    s = d["shape"]
    rep.tables.append(Table("model shape", list(s), [list(s.values())]))
    rep.tables.append(Table("the same budget under other laws", ["law", "params", "tokens", "tokens/param", "loss"],
                            [[d["law"], fmt_count(d["params"]), fmt_count(d["tokens"]), d["tokens_per_param"],
                              d["loss"]]] +
                            [[c["law"], fmt_count(c["params"]), fmt_count(c["tokens"]), c["tokens_per_param"],
                              c["loss"]] for c in d["comparison"]]))
    if d["time_breakdown"]:
        tb = d["time_breakdown"]
        rep.tables.append(Table("one step of the chosen layout (seconds; step-time model)", list(tb),
                                [list(tb.values())]))
    moe = "moe" in d  # the EP column only for MoE plans

    def row(tag, a, mfu, days, note):
        return [tag, a["tp"], a["pp"], a["dp"], *((a["ep"],) if moe else ()), a["zero_stage"], a["micro_batch"],
                a["recompute"], a["memory_per_gpu_gib"], mfu, days, note]

    rep.tables.append(Table("layouts", ["", "TP", "PP", "DP", *(("EP",) if moe else ()), "ZeRO", "micro-batch",
                                        "recompute", "GiB/GPU", "MFU", "days", "note"],
                            [row("chosen", L, d["mfu"], d["days"], "best predicted throughput")] +
                            [row("alternative", a, a["mfu"], a["days"], a["why_lost"]) for a in d["alternatives"]]))
    # figures: memory per layout (the estimates the layouts were checked with), time and cost vs GPUs (if scanned)
    layouts = [("chosen", plan.layout)] + [(f"alt {i + 1}", a) for i, a in enumerate(plan.alternative_layouts)]
    labels = [f"{tag}: TP{lay.tp} PP{lay.pp}" + (f" EP{lay.ep}" if moe else "") + f" Z{lay.zero_stage} "
              f"mb{lay.micro_batch}" for tag, lay in layouts]
    bds = [{k: v / GIB for k, v in lay.memory.breakdown.items()} for _, lay in layouts]
    rep.figures.append(Figure(plots.plot_memory_bars(labels, bds, plan.gpu.memory_gib, "per-GPU memory by layout"),
                              "Per-GPU device memory (GiB) of the chosen and alternative layouts at their peak "
                              "phase; dashed: usable memory.", "memory per layout", "plan_memory"))
    if plan.scan:
        rep.figures.append(Figure(plots.plot_time_cost([pt.gpus for pt in plan.scan], [pt.days for pt in plan.scan],
                                                       [pt.cost_usd for pt in plan.scan], L["gpus"]),
                                  "Wall-clock days and cost vs GPU count, fastest layout at each count (its "
                                  "modelled throughput; same goodput).", "time and cost vs GPUs", "plan_time"))
    rep.warnings = list(d["notes"])
    rep.assumptions = [(k, v) for k, v in d["assumptions"].items()]
    return rep

