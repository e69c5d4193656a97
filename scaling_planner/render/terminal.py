"""Rich terminal renderers. Pure formatting: they take core results and return rich renderables."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..units import fmt_count


def _g(x, digits=4):
    if x is None:
        return "—"
    try:
        return f"{x:.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def laws_table(laws) -> Table:
    from rich import box

    t = Table(title="Scaling-law catalogue", title_justify="left", box=box.SIMPLE_HEAD)
    t.caption = "a, b: N_opt ∝ C^a, D_opt ∝ C^b.  One law: scaleplan laws show NAME"
    for c in ("name / source", "form", "a", "b", "N counts"):
        t.add_column(c, no_wrap=c != "name / source", overflow="fold")
    for law in laws:
        ex = law.exponents()
        src = law.citation.get("paper", "").split(",")[0].split(" (")[0]
        t.add_row(Text.assemble(law.name, "\n", (src, "dim")), law.form, _g(ex.get("a"), 3), _g(ex.get("b"), 3),
                  _n_counts(law.conventions.get("N", "?")))
    return t


def _full(x) -> str:
    """A parameter at full precision in readable form: 0.076, 1.8172, 1.3e+09, 6.4e+13 (never 64000000000000.0)."""
    v = float(x)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-4):
        mant, exp = f"{v:.10e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{exp}"
    return f"{v:.10g}"


def _params_text(params) -> str:
    """'X_c = 8.8e+13, alpha = 0.076': numbers at full precision, never a Python dict."""
    return ", ".join(f"{k} = {_full(v)}" for k, v in params.items())


def law_panel(law, out: dict) -> Panel:
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    rows.add_row("law", f"{law.name} — {law.title}")
    rows.add_row("form", law.summary())
    for k, v in law.params.items():
        ci = law.ci95.get(k)
        rows.add_row(f"  {k}", _full(v) + (f"   95% CI [{_g(ci[0])}, {_g(ci[1])}]" if ci else ""))
    if law.allocation:
        al = law.allocation
        rows.add_row("allocation", _params_text({k: al[k] for k in ("k_N", "k_M", "a", "k_D", "b") if k in al})
                     + f" (C in {al.get('C_unit', 'FLOPs')})")
    for key, comp in law.components.items():
        rows.add_row(f"component {key}", Text(f"{comp.get('title', '')}: {_params_text(comp['params'])}"))
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


def _finite(x) -> bool:
    """A finite real number (not None, NaN, inf or complex)."""
    from ..units import is_finite_real

    return is_finite_real(x)


def _ci(ci):
    from ..units import fmt_ci

    return fmt_ci(ci, 4)


def fit_view(rep) -> Group:
    """Rich tables for a FitReport: one per method, then skipped methods. What is method-specific (the objective,
    diagnostic lines) comes from the method's spec (fitting/registry.py)."""
    from ..fitting.registry import get as method_spec

    inp = rep.input
    robust = any((s := method_spec(f.method)) is not None and s.robust_objective or "E" in f.params
                 for f in rep.fits)
    head = Text(f"{inp['file']}: {inp.get('rows_used', inp['rows'])} rows, {inp['runs']} runs, N counts "
                f"{inp['param_count']} params"
                + (f"; objective {rep.options.get('loss')} on log loss"
                   + (f" (delta {rep.options.get('huber_delta'):g}), summed" if rep.options.get('loss') != 'mse'
                      else ", summed") if robust else "; least squares in log-log space"))
    parts = [head]
    at = getattr(rep, "at_flops", None)
    if at is not None and any("at_flops" in f.derived for f in rep.fits):
        why = ("largest compute in the data; change with --at-flops" if getattr(rep, "at_flops_source", "") !=
               "--at-flops" else "set with --at-flops")
        parts.append(Text(f"N_opt, D_opt and loss at C = {at:.3g} FLOPs ({why})", style="bold"))
    for note in list(inp.get("derived", [])) + list(inp.get("warnings", [])):
        parts.append(Text(f"  note: {note}", style="yellow"))

    def num(v, digits):  # a number that is not finite is never shown as if it were a value
        if _finite(v):
            return _g(v, digits)
        return "— (infinite)" if isinstance(v, float) and v in (float("inf"), float("-inf")) else "—"

    for f in rep.fits:
        t = Table(title=f"{f.method}  ({f.n_points} points" + (f", objective {num(f.objective, 10)}"
                  if f.objective is not None else "") + f", converged {'yes' if f.converged else 'NO'})",
                  title_justify="left")
        t.add_column("parameter")
        t.add_column("value", justify="right")
        t.add_column("95% CI (bootstrap)", justify="right")
        for k, v in f.params.items():
            t.add_row(k, num(v, 6), _ci(f.ci95.get(k)))
        for k, v in f.derived.items():
            if isinstance(v, (int, float)) and k != "at_flops":
                t.add_row(Text(f"{k} (derived)", style="dim"), num(v, 5), _ci(f.ci95.get(k)))
        fa = f.derived.get("at_flops")
        if fa is not None and (at is None or abs(fa - at) > 1e-9 * abs(at)):
            t.caption = f"derived N_opt/D_opt/loss at C = {fa:.3g} FLOPs"
        parts.append(t)
        spec = method_spec(f.method)
        for line in (spec.notes(f) if spec is not None and spec.notes is not None else []):
            parts.append(Text("  " + line, style="dim"))
        for w in f.warnings:
            parts.append(Text(f"  warning: {w}", style="yellow"))
    hold = holdout_table(rep)
    if hold is not None:
        parts.append(hold)
    for m, why in rep.skipped.items():
        parts.append(Text(f"skipped {m}: {why}", style="dim"))
    return Group(*parts)


def _holdout_what(k: int, by: str) -> str:
    return (f"the {k} largest-compute run(s)" if by == "compute" else f"every run of the {k} largest model size(s)")


def holdout_table(rep) -> Group | None:
    """The holdout check of every method side by side (``FitReport.holdout_table()``): held-out runs, the error of
    the predicted loss on them (mean and max |relative error|), the largest compute and size fitted, and below the
    table why a method has no error (e.g. its law predicts no loss); None without a holdout."""
    rows = rep.holdout_table() if hasattr(rep, "holdout_table") else []
    if not rows:
        return None
    by, k = rows[0]["by"], rows[0]["k"] or len(rows[0].get("runs") or [])
    t = Table(title=f"holdout: refit without {_holdout_what(k, by)}; |relative error| of the predicted loss on them",
              title_justify="left")
    for c in ("method", "held-out runs", "points", "mean |err|", "max |err|", "fitted to C", "fitted to N"):
        t.add_column(c, justify="left" if c == "method" else "right")
    notes = []
    for r in rows:
        if r.get("mean_abs_rel_error") is None:
            t.add_row(r["method"], str(r["runs"]), "—", "—", "—", "", "")
            note = r.get("note") or "no error"
            notes.append(Text("  " + (note if note.startswith(r["method"]) else f"{r['method']}: {note}"),
                              style="dim"))
            continue
        t.add_row(r["method"], str(r["runs"]), str(r["n_points"]), f"{r['mean_abs_rel_error']:.2%}",
                  f"{r['max_abs_rel_error']:.2%}", _g(r.get("max_train_flops"), 3), fmt_count(r.get("max_train_N")))
    return Group(t, *notes)


def grouped_fit_view(grep) -> Group:
    """A GroupedFitReport: one comparison table (a row per group and method: exponents, N_opt and loss at the common
    budget with 95% intervals, and the holdout error when there is one), then each group's warnings and what was
    skipped. The per-group parameter tables are in --json and the report."""
    inp = grep.input
    by = list(grep.by)
    head = Text(f"{inp.get('file')}: {inp.get('groups_fitted')} of {inp.get('groups')} groups fitted"
                + (f" by {', '.join(by)}" if by else "")
                + (f" ({inp.get('rows_used')} of {inp.get('rows')} rows)" if inp.get("rows") else ""))
    parts = [head]
    if grep.where:
        parts.append(Text(f"  rows where {grep.where}", style="dim"))
    why = ("set with --at-flops" if grep.at_flops_source == "--at-flops" else
           f"{grep.at_flops_source}; change with --at-flops")
    parts.append(Text(f"N_opt and loss at C = {_g(grep.at_flops, 3)} FLOPs for every group ({why})", style="bold"))
    notes: dict[str, list[str]] = {}
    for g, r in grep.reports.items():
        for note in list(r.input.get("derived", [])) + list(r.input.get("warnings", [])):
            notes.setdefault(note, []).append(g)
    for note, gs in notes.items():
        if grep.where and note.startswith(f"rows where {grep.where}"):
            continue
        scope = "" if len(gs) == len(grep.reports) else f" ({', '.join(gs[:3])}{', ...' if len(gs) > 3 else ''})"
        parts.append(Text(f"  note: {note}{scope}", style="yellow"))
    rows = grep.comparison()
    has_a = any("a" in r["exponents"] for r in rows)
    other = [k for k in ("alpha", "beta", "alpha_N", "alpha_D", "alpha_C") if any(k in r["exponents"] for r in rows)]
    hold = any(r["holdout"] for r in rows)
    t = Table(title="comparison of the groups", title_justify="left")
    # the group: its values under a header naming the columns (dataset, warmup: c4, long), or its name
    t.add_column(", ".join(by) if by else "group", overflow="fold")
    t.add_column("method", no_wrap=True)
    if has_a:
        t.add_column("a [95% CI]", justify="right")
    if other:
        t.add_column("loss exponents", justify="right")
    has_n = any(_finite(r["N_opt"]) for r in rows)
    has_loss = any(_finite(r["loss"]) for r in rows)
    if has_n:
        t.add_column("N_opt [95% CI]", justify="right")
    if has_loss:
        t.add_column("loss [95% CI]", justify="right")
    if hold:
        t.add_column("holdout |err| mean / max", justify="right")
    caption = (["a: N_opt ∝ C^a"] if has_a else []) + (["N_opt and loss at the common budget"] if has_n or has_loss
                                                       else [])
    if other:
        caption.append("loss exponents: " + ", ".join(
            x for x in ("α, β of E + A/N^α + B/D^β" if {"alpha", "beta"} & set(other) else "",
                        "α_X of L ∝ X^-α_X" if {"alpha_N", "alpha_D", "alpha_C"} & set(other) else "") if x))
    prev = None
    sections = len(rows) > len({r["group"] for r in rows})  # a rule between groups when they have several rows
    for r in rows:
        if prev is not None and r["group"] != prev and sections:
            t.add_section()
        first = r["group"] != prev
        prev = r["group"]
        label = ", ".join(r["keys"].get(c, "") for c in by) if by else r["group"]
        cells = [label if first else ""]
        cells.append(r["method"] + ("" if r["converged"] else " (not usable)"))
        ex, ci = r["exponents"], r["ci95"]
        if has_a:
            cells.append(f"{ex['a']:.3f}{_ci_text(ci.get('a'), 3)}" if "a" in ex else "—")
        if other:
            cells.append(" ".join(f"{_GREEK.get(k, k)} {ex[k]:.3f}" for k in other if k in ex) or "—")
        if has_n:
            cells.append(f"{fmt_count(r['N_opt'])} {_ci_counts(ci.get('N_opt'))}" if _finite(r["N_opt"]) else "—")
        if has_loss:
            cells.append(f"{r['loss']:.4g}{_ci_text(ci.get('loss'), 3)}" if _finite(r["loss"]) else "—")
        if hold:
            h = r["holdout"] or {}
            cells.append(f"{h['mean_abs_rel_error']:.1%} / {h['max_abs_rel_error']:.1%}"
                         if h.get("mean_abs_rel_error") is not None else "—")
        t.add_row(*cells)
    if hold:
        h0 = next(r["holdout"] for r in rows if r["holdout"])
        caption.append(f"holdout: each group refitted without {_holdout_what(h0['k'] or 0, h0['by'])}")
    t.caption = "; ".join(caption)
    parts.append(t)
    for g, r in grep.reports.items():
        for f in r.fits:
            if f.warnings:  # the first (the reason, when a fit is not usable); all of them in --json and the report
                more = f" (+{len(f.warnings) - 1} more)" if len(f.warnings) > 1 else ""
                parts.append(Text(f"  {g} {f.method}: warning: {f.warnings[0]}{more}", style="yellow"))
        for m, why in r.skipped.items():
            parts.append(Text(f"  {g}: skipped {m}: {why}", style="dim"))
    for g, why in grep.skipped.items():
        parts.append(Text(f"skipped group {g}: {why}", style="yellow"))
    return Group(*parts)


def _ci_text(ci, digits: int) -> str:
    """' [lo, hi]' (a 95% interval after its value), or nothing when there is none."""
    from ..units import fmt_ci

    c = fmt_ci(ci, digits)
    return "" if c == "—" else " " + c


_GREEK = {"alpha": "α", "beta": "β", "alpha_N": "α_N", "alpha_D": "α_D", "alpha_C": "α_C"}


def _ci_counts(ci) -> str:
    """A 95% interval of counts: [412M, 566M]; empty when there is none."""
    if not ci or len(ci) < 2 or not (_finite(ci[0]) and _finite(ci[1])):
        return ""
    return f"[{fmt_count(ci[0])}, {fmt_count(ci[1])}]"


def models_table(shapes) -> Table:
    t = Table(title="Model presets (scaleplan memory --model NAME)", title_justify="left")
    for c in ("name", "params", "layers", "d_model", "heads", "kv", "ffn", "vocab", "tied"):
        t.add_column(c, justify="right" if c not in ("name", "tied") else "left", no_wrap=c == "name")
    for s in shapes:
        t.add_row(s.name, f"{s.params_total:,}", str(s.n_layers), str(s.d_model), str(s.n_heads),
                  str(s.n_kv_heads), str(s.ffn), str(s.vocab), "yes" if s.tied_embeddings else "no")
    return t


def gpus_table(gpus) -> Table:
    from rich import box

    t = Table(title="GPU catalogue (dense peaks; memory as the driver reports it)", title_justify="left",
              box=box.SIMPLE_HEAD)
    for c in ("key", "name", "GiB", "bf16 TF/s", "fp8 TF/s", "HBM GB/s", "$/GPU-h"):
        t.add_column(c, justify="left" if c in ("key", "name") else "right", no_wrap=c != "name",
                     overflow="fold")
    for g in gpus:
        t.add_row(g.key, g.name, f"{g.memory_gib:.1f}", _g(g.bf16_tflops or g.fp16_tflops, 5),
                  _g(g.fp8_tflops, 5), f"{g.mem_bw_gb_s:g}",
                  "—" if g.price_usd_per_hour is None else f"{g.price_usd_per_hour:.2f}")
    t.caption = "GiB usable; TF/s = dense TFLOP/s; prices are dated defaults (price_source in --json), or --price"
    return t


def solve_line(sol) -> Text:
    """One line for ``memory --solve``: the value that fits, its device peak, and the next value's."""
    from ..units import GIB

    e = sol.estimate
    nxt = ("" if sol.next_value is None else
           f"; {sol.next_value:,} needs {sol.next_estimate.device / GIB:.3f} GiB" if sol.next_estimate is not None
           else f"; {sol.next_value:,} is not a valid layout")
    word = "smallest" if sol.variable == "gpus" else "largest"
    return Text(f"{word} {sol.variable} that fits {e.gpu_name}: {sol.value:,} ({e.device / GIB:.3f} GiB device of "
                f"{e.usable_gib:.3f} usable){nxt}", style="bold")


def measured_table(est, measured) -> Table:
    """``memory --measure``: estimated vs measured allocated / reserved / device peaks and the error."""
    from ..units import GIB

    t = Table(title=f"measured on {measured.gpu_name} ({measured.extra.get('steps', 3)} steps; torch "
                    f"{measured.torch}, transformers {measured.transformers})", title_justify="left")
    for col in ("peak", "estimate GiB", "measured GiB", "error"):
        t.add_column(col, justify="left" if col == "peak" else "right")
    for kind, e, m in measured.pairs(est):
        t.add_row(kind, f"{e / GIB:.2f}", f"{m / GIB:.2f}", f"{100 * (e / m - 1):+.1f}%" if m else "—")
    return t


def memory_view(est) -> Group:
    from ..units import GIB

    d = est.to_dict()
    s = est.shape
    c = est.config
    from ..memory.profiles import FRAMEWORKS, STACK_LABELS

    others = "|".join(f for f in STACK_LABELS if f != c.framework and f in FRAMEWORKS)
    stack = Text(f"stack: {c.framework} ({STACK_LABELS.get(c.framework, c.framework)}); "
                 f"change with --framework {others}")
    head = Text(f"{s.name}: {est.params_total:,} params (trainable {est.params_trainable:,}"
                + (f", active {est.params_active:,}" if est.params_active != est.params_total else "") + ")")
    t = Table(title=f"per-GPU memory: {c.peak_kind} peak at {est.peak_phase.replace('_', ' ')} ({est.rank} rank)",
              title_justify="left", min_width=64)
    t.add_column("component")
    t.add_column("GiB", justify="right")
    t.add_column("share", justify="right")
    total = est.total
    for k in ("weights", "gradients", "optimizer", "paged_optimizer", "activations", "logits", "buffers",
              "fp8_weights", "overhead"):
        if k in ("fp8_weights", "paged_optimizer") and k not in est.breakdown:
            continue  # only under precision fp8 (cached FP8 weight copies) / paged optimizers (CUDA unified memory)
        v = est.breakdown.get(k, 0.0)
        t.add_row(k, f"{v / GIB:.2f}", f"{v / total:.0%}" if total else "—")
    t.add_row(Text("total", style="bold"), Text(f"{total / GIB:.2f}", style="bold"), "")
    parts = [stack, head, t]
    ms = est.model_states_gib()
    if ms is not None:  # resident whatever the phase (ZeRO paper Fig. 1; docs/memory.md §2.1)
        parts.append(Text(f"model states (ZeRO paper Fig. 1 view, all three held): weights {ms['weights']:.2f} + gradients "
                          f"{ms['gradients']:.2f} + optimizer {ms['optimizer']:.2f} = {ms['total']:.2f} GiB"))
    if c.peak_kind != "device":
        parts.append(Text(f"device peak (context + fragmentation included): {est.device / GIB:.2f} GiB"))
    if est.cpu_bytes:
        parts.append(Text(f"CPU RAM for offload: {est.cpu_bytes / GIB:.1f} GiB per node"))
    if est.gpu_name:
        ok = est.fits
        msg = (f"{est.gpu_name}: {est.usable_gib:.1f} of {est.gpu_memory_gib:.1f} GiB usable (fit rule, "
               f"docs/memory.md §7.1) -> "
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
        sharded = [k for k, v in a["sharded"].items() if v]
        lay = a["layout"]
        lines.append(f"ZeRO-{a['zero_stage']} ("
                     + (", ".join(sharded) + " sharded" if sharded else "nothing sharded") + "), "
                     + f"{_plural(lay['gpus'], 'GPU')}: TP {lay['tp']} x PP {lay['pp']} x DP {lay['dp']}"
                     + (", sequence parallel" if lay["sp"] else "") + f", offload {a['offload']}")
        lines.append(f"seq {a['seq_len']} x micro-batch {a['micro_batch']}, activations {_g(a['activation_bytes'])} B, "
                     f"recompute {a['recompute']}, attention {a['attention']}, dropout {_g(a['dropout'])}, "
                     f"logits {_g(a['logit_bytes_per_element'])} B/element")
        if a.get("fp8"):
            f8 = a["fp8"]
            lines.append(f"FP8 (Transformer Engine): cached FP8 copies of {fmt_count(f8['gemm_weights_on_rank'])} GEMM "
                         f"weights at {_g(f8['weight_copy_bytes'])} B (row-wise + transpose), GEMM inputs saved at "
                         f"{_g(f8['gemm_input_bytes'])} B")
        lines.append("phases (GiB): " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}"
                                                  for k, v in d["phases_gib"].items())
                     + ("; gradients alive during forward (accumulation)" if a["grads_alive_in_forward"] else ""))
        lines += [f"{n}" for n in a["profile_notes"]]
    lines.append(f"CUDA context {c.cuda_context_gib:g} GiB, fragmentation {c.fragmentation:.0%}; GiB = 2^30 bytes")
    parts.append(Text("assumptions:\n  " + "\n  ".join(lines), style="dim"))
    return Group(*parts)


def _plural(n, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _n_counts(text: str) -> str:
    return str(text).split(" ")[0].replace("non-embedding", "non-emb.")


def _money(x):
    return "—" if x is None else f"${x:,.0f}"


def plan_view(plan) -> Group:
    from ..units import fmt_count

    d = plan.to_dict()
    s = d["shape"]
    L = d["layout"]
    iv = d["interval"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()

    def ci(key, fmt=fmt_count):
        return f"  (95% {fmt(iv[key][0])}–{fmt(iv[key][1])})" if key in iv else ""

    head.add_row("law", f"{plan.law}" + (f" (intervals: {iv['source']})" if iv else ""))
    head.add_row("compute", f"{d['flops']:.3g} FLOPs (6ND); with attention {d['flops_attn']:.3g}")
    moe = d.get("moe")
    head.add_row("params", f"{fmt_count(d['params'])}{ci('params')}"
                 + (f" active of {fmt_count(moe['params_total'])} ({moe['experts']} experts, top-{moe['top_k']})"
                    if moe else ""))
    head.add_row("tokens", f"{fmt_count(d['tokens'])}{ci('tokens')}")
    head.add_row("tokens/param", f"{d['tokens_per_param']:.1f}" + ci("tokens_per_param", lambda x: f"{x:.1f}"))
    if d["loss"] is not None:
        head.add_row("predicted loss", f"{d['loss']:.4f}" + ci("loss", lambda x: f"{x:.3f}")
                     + " (the law's own data/tokenizer units)")
    head.add_row("model shape", f"{_plural(s['n_layers'], 'layer')}, d_model {s['d_model']}, {s['n_heads']} heads "
                 f"({s['n_kv_heads']} KV), ffn {s['ffn']}, vocab {s['vocab']} -> {s['params_total']:,} params")
    head.add_row("GPUs", f"{L['gpus']} x {plan.gpu.name} ({plan.assumptions['gpus_source']})")
    head.add_row("layout", f"TP {L['tp']} x PP {L['pp']} x DP {L['dp']}" + (f" (EP {L['ep']})" if moe else "")
                 + f", ZeRO-{L['zero_stage']}, micro-batch {L['micro_batch']} x grad-accum {L['grad_accum']}, "
                 f"recompute {L['recompute']}" + (", sequence parallel" if L["sequence_parallel"] else "")
                 + f"; {d['framework']} kernels" + (", FP8 GEMMs" if L.get("precision") == "fp8" else ""))
    head.add_row("batch / LR", f"{d['global_batch']} x {d['seq_len']} = {fmt_count(d['global_batch_tokens'])} tokens "
                 f"per step; learning rate ~{d['learning_rate']:.2e}")
    head.add_row("memory/GPU", f"{d['memory_per_gpu_gib']:.1f} GiB of {d['gpu_memory_gib']:.1f} GiB (device peak)")
    head.add_row("time", f"{d['days']:.1f} days, {d['gpu_hours']:,.0f} GPU-hours, {_money(d['cost_usd'])}"
                 + (f" at ${d['price_usd_per_gpu_hour']:.2f}/GPU-h" if d["price_usd_per_gpu_hour"] else ""))
    names = {"compute": "compute", "memory_bound": "memory-bound", "tp_comm": "TP comm",
             "dp_comm_exposed": "exposed DP comm", "pp_bubble": "PP bubble", "ep_comm": "EP comm",
             "recompute": "recompute"}
    tb = d["time_breakdown"]
    total = sum(tb.values()) or 1.0
    head.add_row("step", f"{d['step_time_s']:.3g} s per step, {fmt_count(d['tokens_per_s'])} tokens/s "
                 f"({fmt_count(d['tokens_per_s'] / L['gpus'])} per GPU)"
                 + ("; modelled: " + ", ".join(f"{names.get(k, k)} {v / total:.0%}" for k, v in tb.items()
                                               if v / total >= 0.005) if tb else ""))
    head.add_row("assumed", f"MFU {d['mfu']:.2f}" + (f", HFU {d['hfu']:.2f}" if d["hfu"] is not None else "")
                 + f" ({plan.assumptions['mfu_source']}; 6N FLOPs/token, dense BF16 "
                 f"peak {plan.assumptions['peak_tflops_bf16']:g} TFLOP/s), goodput {d['goodput']:.2f}")
    parts = [Panel(head, title="plan", title_align="left")]
    cmp = Table(title="the same budget under other laws", title_justify="left")
    for c in ("law", "params", "tokens", "tokens/param", "loss", "N counts"):
        cmp.add_column(c, justify="left" if c in ("law", "N counts") else "right", no_wrap=c == "law")
    cmp.add_row(plan.law, fmt_count(d["params"]), fmt_count(d["tokens"]), f"{d['tokens_per_param']:.1f}",
                _g(d["loss"], 4), _n_counts(plan.assumptions["law_conventions"].get("N", "?")))
    for row in d["comparison"]:
        cmp.add_row(row["law"], fmt_count(row["params"]), fmt_count(row["tokens"]), f"{row['tokens_per_param']:.1f}",
                    _g(row["loss"], 4), _n_counts(row["N_counts"]))
    parts.append(cmp)
    mem = Table(title=f"memory per GPU, chosen layout ({plan.memory.peak_phase.replace('_', ' ')} peak)",
                title_justify="left")
    bd = d["memory_breakdown_gib"]
    keys = [("weights", "weights"), ("grads", "gradients"), ("optim.", "optimizer"), ("activ.", "activations"),
            ("logits", "logits"), ("buffers", "buffers")]
    if "fp8_weights" in bd:  # Transformer Engine's cached FP8 weight copies (precision fp8)
        keys.append(("fp8 w.", "fp8_weights"))
    keys += [("other", "overhead"), ("total", "total")]
    for head, _ in keys:
        mem.add_column(head, justify="right")
    mem.caption = "GiB; other = CUDA context + allocator headroom" + ("; fp8 w. = FP8 weight copies" if
                                                                      "fp8_weights" in bd else "")
    mem.add_row(*[f"{bd[k]:.1f}" for _, k in keys])
    parts.append(mem)
    if d["alternatives"]:
        alt = Table(title="alternative layouts", title_justify="left")
        ep = bool(moe)  # the EP column only for MoE plans
        for c in ("TP", "PP", "DP", *(("EP",) if ep else ()), "ZeRO", "mb", "recompute", "GiB/GPU", "MFU", "days",
                  "why it lost"):
            alt.add_column(c, justify="left" if c in ("recompute", "why it lost") else "right")
        for a in d["alternatives"]:
            alt.add_row(str(a["tp"]), str(a["pp"]), str(a["dp"]), *((str(a["ep"]),) if ep else ()),
                        str(a["zero_stage"]), str(a["micro_batch"]), a["recompute"],
                        f"{a['memory_per_gpu_gib']:.1f}", f"{a['mfu']:.2f}", f"{a['days']:.1f}", a["why_lost"])
        parts.append(alt)
    for n in d["notes"]:
        parts.append(Text("note: " + n, style="yellow"))
    a = plan.assumptions
    parts.append(Text("assumptions:\n  " + "\n  ".join([
        a["time_formula"], a["batch"], a["lr_source"], "layouts: " + a["layout_rules"],
        "memory: " + a["memory_profile"], "shape: " + a["shape_rule"], "price: " + (a["price_source"] or "none (pass --price)")]),
        style="dim"))
    return Group(*parts)
