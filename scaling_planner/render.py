"""Rich terminal renderers. Pure formatting: they take core results and return rich renderables."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .units import fmt_count


def _g(x, digits=4):
    if x is None:
        return "—"
    try:
        return f"{x:.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def laws_table(laws) -> Table:
    t = Table(title="Scaling-law catalogue", title_justify="left")
    t.caption = "scaleplan laws show NAME [--flops C | --params N --tokens D]"
    for c in ("name", "form", "a (N∝C^a)", "b (D∝C^b)", "N counts", "source"):
        t.add_column(c)
    for law in laws:
        ex = law.exponents()
        src = law.citation.get("paper", "").split(",")[0]
        t.add_row(law.name, law.form, _g(ex.get("a"), 3), _g(ex.get("b"), 3),
                  law.conventions.get("N", "?").split(" ")[0], Text(src))
    return t


def law_panel(law, out: dict) -> Panel:
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    rows.add_row("law", f"{law.name} — {law.title}")
    rows.add_row("form", law.summary())
    for k, v in law.params.items():
        ci = law.ci95.get(k)
        rows.add_row(f"  {k}", repr(v) + (f"   95% CI [{_g(ci[0])}, {_g(ci[1])}]" if ci else ""))
    if law.allocation:
        al = law.allocation
        k = f"k_N={al.get('k_N')}" if "k_N" in al else f"k_M={al.get('k_M')}"
        rows.add_row("allocation", f"{k}, a={al['a']}, k_D={al.get('k_D')}, b={al.get('b')} (C in "
                     f"{al.get('C_unit', 'FLOPs')})")
    for key, comp in law.components.items():
        rows.add_row(f"component {key}", f"{comp.get('title', '')}: {comp['params']}")
    ex = law.exponents()
    if ex:
        rows.add_row("exponents", f"a = {ex['a']:.4f} (N_opt ∝ C^a), b = {ex['b']:.4f}")
    for k, v in law.conventions.items():
        rows.add_row(f"convention {k}", str(v))
    cit = law.citation
    rows.add_row("source", ", ".join(str(v) for v in cit.values()))
    for note in law.notes:
        rows.add_row("note", Text(note))
    parts = [rows]
    if out.get("params") is not None:
        res = Table(title="prediction", title_justify="left")
        for c in ("FLOPs", "params N", "tokens D", "tokens/param", "loss"):
            res.add_column(c, justify="right")
        res.add_row(_g(out.get("flops"), 3), fmt_count(out["params"]), fmt_count(out.get("tokens")),
                    _g(out.get("tokens_per_param"), 3), _g(out.get("loss"), 4))
        parts.append(res)
    return Panel(Group(*parts), title=law.name, title_align="left")


def _ci(ci):
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"[{_g(ci[0])}, {_g(ci[1])}]"


def fit_view(rep) -> Group:
    """Rich tables for a FitReport: one per method, then skipped methods."""
    inp = rep.input
    head = Text(f"{inp['file']}: {inp.get('rows_used', inp['rows'])} rows, {inp['runs']} runs, N counts "
                f"{inp['param_count']} params; loss {rep.options.get('loss')} on log loss"
                + (f" (delta {rep.options.get('huber_delta'):g})" if rep.options.get('loss') != 'mse' else ""))
    parts = [head]
    for note in list(inp.get("derived", [])) + list(inp.get("warnings", [])):
        parts.append(Text(f"  note: {note}", style="yellow"))
    for f in rep.fits:
        t = Table(title=f"{f.method}  ({f.n_points} points" + (f", objective {f.objective:.10g}"
                  if f.objective is not None else "") + f", converged {'yes' if f.converged else 'NO'})",
                  title_justify="left")
        t.add_column("parameter")
        t.add_column("value", justify="right")
        t.add_column("95% CI (bootstrap)", justify="right")
        for k, v in f.params.items():
            t.add_row(k, _g(v, 6), _ci(f.ci95.get(k)))
        for k, v in f.derived.items():
            if isinstance(v, (int, float)) and k != "at_flops":
                t.add_row(Text(f"{k} (derived)", style="dim"), _g(v, 5), _ci(f.ci95.get(k)))
        if "at_flops" in f.derived:
            t.caption = f"derived N_opt/D_opt/loss at C = {f.derived['at_flops']:.3g} FLOPs"
        parts.append(t)
        info = f.info
        if f.method == "approach3":
            parts.append(Text(f"  {info['n_starts_at_best']} of {info['n_starts']} starts reached the best objective; "
                              f"{info['n_starts_converged']} converged; best start: {info['iterations_best']} "
                              f"iterations ({info['status_best']})", style="dim"))
            if info.get("note"):
                parts.append(Text("  " + info["note"], style="dim"))
        if f.method == "approach2":
            parts.append(Text(f"  {len(info['vertices'])} IsoFLOP vertices used", style="dim"))
        if f.holdout:
            h = f.holdout
            if "mean_abs_rel_error" in h:
                parts.append(Text(f"  holdout: fitted without {len(h['runs'])} largest-compute run(s); loss error on "
                                  f"them: mean {h['mean_abs_rel_error']:.2%}, max {h['max_abs_rel_error']:.2%}"))
            else:
                parts.append(Text(f"  holdout: {h.get('note')}", style="dim"))
        for w in f.warnings:
            parts.append(Text(f"  warning: {w}", style="yellow"))
    for m, why in rep.skipped.items():
        parts.append(Text(f"skipped {m}: {why}", style="dim"))
    return Group(*parts)


def models_table(shapes) -> Table:
    t = Table(title="Model presets (scaleplan memory --model NAME)", title_justify="left")
    for c in ("name", "params", "layers", "d_model", "heads", "kv", "ffn", "vocab", "tied"):
        t.add_column(c, justify="right" if c not in ("name", "tied") else "left", no_wrap=c == "name")
    for s in shapes:
        t.add_row(s.name, f"{s.params_total:,}", str(s.n_layers), str(s.d_model), str(s.n_heads),
                  str(s.n_kv_heads), str(s.ffn), str(s.vocab), "yes" if s.tied_embeddings else "no")
    return t


def gpus_table(gpus) -> Table:
    t = Table(title="GPU catalogue (dense peaks; memory as the driver reports it)", title_justify="left")
    for c in ("key", "name", "memory GiB", "bf16 TFLOP/s", "fp8 TFLOP/s", "HBM GB/s", "$/GPU-h"):
        t.add_column(c, justify="left" if c in ("key", "name") else "right")
    for g in gpus:
        t.add_row(g.key, g.name, f"{g.memory_gib:.1f}", _g(g.bf16_tflops or g.fp16_tflops, 5),
                  _g(g.fp8_tflops, 5), f"{g.mem_bw_gb_s:g}",
                  "—" if g.price_usd_per_hour is None else f"{g.price_usd_per_hour:.2f}")
    t.caption = "prices are dated defaults (see price_source in --json); override with --price"
    return t


def memory_view(est) -> Group:
    from .units import GIB

    d = est.to_dict()
    s = est.shape
    c = est.config
    head = Text(f"{s.name}: {est.params_total:,} params (trainable {est.params_trainable:,}"
                + (f", active {est.params_active:,}" if est.params_active != est.params_total else "") + ")")
    t = Table(title=f"per-GPU memory at the peak ({est.peak_phase.replace('_', ' ')}, {est.rank} rank; "
              f"{c.peak_kind} peak)", title_justify="left")
    t.add_column("component")
    t.add_column("GiB", justify="right")
    t.add_column("share", justify="right")
    total = est.total
    for k in ("weights", "gradients", "optimizer", "activations", "logits", "buffers", "overhead"):
        v = est.breakdown.get(k, 0.0)
        t.add_row(k, f"{v / GIB:.2f}", f"{v / total:.0%}" if total else "—")
    t.add_row(Text("total", style="bold"), Text(f"{total / GIB:.2f}", style="bold"), "")
    parts = [head, t]
    if c.peak_kind != "device":
        parts.append(Text(f"device peak (context + fragmentation included): {est.device / GIB:.2f} GiB"))
    if est.cpu_bytes:
        parts.append(Text(f"CPU RAM for offload: {est.cpu_bytes / GIB:.1f} GiB per node"))
    if est.gpu_name:
        ok = est.fits
        msg = (f"{est.gpu_name}: {est.gpu_memory_gib:.1f} GiB usable -> "
               + (f"fits with {est.headroom_gib():.1f} GiB headroom" if ok else
                  f"does NOT fit (short by {-est.headroom_gib():.1f} GiB)"))
        parts.append(Text(msg, style="green" if ok else "bold red"))
    if est.suggestions:
        st = Table(title="changes that make it fit" if any(x["fits"] for x in est.suggestions)
                   else "closest changes (none fits alone)", title_justify="left")
        st.add_column("change")
        st.add_column("device GiB", justify="right")
        for x in est.suggestions:
            st.add_row(x["change"], f"{x['total_gib']:.1f}")
        parts.append(st)
    a = d["assumptions"]
    lines = []
    if a.get("mode") == "inference":
        lines.append(f"inference: KV cache {a['kv_cache_gib']:.2f} GiB ({a['kv_bytes_per_token']:,.0f} B/token), "
                     f"context {a['context']}, batch {a['batch']}")
    else:
        bp = a["bytes_per_param"]
        lines.append(f"framework {a['framework']}, precision {a['precision']}: bytes/param weights {bp['weights']:.4g}"
                     + (f", grads {bp['gradients']:g}, optimizer (incl. master) {bp['optimizer_incl_master']:.4g}"
                        if bp["gradients"] is not None else f", LoRA adapters w/g/opt {bp['lora_adapter_w_g_opt']}"))
        lines.append(f"ZeRO-{a['zero_stage']} (sharded: " + ", ".join(k for k, v in a["sharded"].items() if v)
                     + f"), layout {a['layout']}, offload {a['offload']}")
        lines.append(f"seq {a['seq_len']} x micro-batch {a['micro_batch']}, activations {a['activation_bytes']} B, "
                     f"recompute {a['recompute']}, attention {a['attention']}, dropout {a['dropout']}, "
                     f"logits {a['logit_bytes_per_element']} B/element")
        lines.append("phases (GiB): " + ", ".join(f"{k} {v:.1f}" for k, v in d["phases_gib"].items())
                     + f"; gradients alive in forward: {a['grads_alive_in_forward']}")
        lines += [f"{n}" for n in a["profile_notes"]]
    lines.append(f"CUDA context {c.cuda_context_gib:g} GiB, fragmentation {c.fragmentation:.0%}; GiB = 2^30 bytes")
    parts.append(Text("assumptions:\n  " + "\n  ".join(lines), style="dim"))
    return Group(*parts)
