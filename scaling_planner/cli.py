"""The ``scaleplan`` command line: a thin typer layer that parses, calls the core, and renders.

Heavy libraries (pandas, scipy, matplotlib) are imported inside the commands, never at start-up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from . import __version__
from .errors import ScalePlanError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Plan language-model training from scaling laws: fit laws to run logs, pick N and D for a "
                       "compute budget, check memory, parallel layout, time and cost.")
laws_app = typer.Typer(add_completion=False, help="The catalogue of published scaling laws.",
                       invoke_without_command=True)
app.add_typer(laws_app, name="laws")


def _version(value: bool):
    if value:
        print(f"scaleplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    pass


def emit_json(obj) -> None:
    """--json mode: the JSON object and nothing else on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False)  # user text is always printed literally


def _num(text: str | None, what: str) -> float | None:
    from .units import parse_positive

    return None if text is None else parse_positive(text, what)


# ------------------------------------------------------------------------------------------------ laws
@laws_app.callback()
def laws_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """List the catalogue (name, form, exponents, source). `scaleplan laws show NAME` prints one law."""
    if ctx.invoked_subcommand is not None:
        return
    from .io.law_file import list_laws
    from .render.terminal import laws_table

    laws = list_laws()
    if as_json:
        emit_json([{"name": law.name, "form": law.form, "title": law.title, "params": dict(law.params),
                    "exponents": law.exponents(), "citation": dict(law.citation)} for law in laws])
    else:
        console().print(laws_table(laws))


@laws_app.command("show")
def laws_show(name: str = typer.Argument(..., help="Catalogue name (see `scaleplan laws`) or a law JSON file."),
              flops: str | None = typer.Option(None, "--flops", metavar="FLOPS", help="Compute budget C in FLOPs (e.g. 1e23)."),
              params: str | None = typer.Option(None, "--params", metavar="N", help="Parameters N (e.g. 7e9 or 7B)."),
              tokens: str | None = typer.Option(None, "--tokens", metavar="D", help="Training tokens D (e.g. 1.4T)."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Print one law in full; with --flops the compute-optimal allocation, with --params [--tokens] the loss."""
    from .io.law_file import load_law
    from .render.terminal import law_panel

    law = load_law(name)
    C = _num(flops, "--flops")
    N = _num(params, "--params")
    D = _num(tokens, "--tokens")
    if C is not None and (N is not None or D is not None):
        raise ScalePlanError("give either --flops (for the optimal allocation) or --params/--tokens (for a loss)")
    if C is None and N is None and D is not None:
        raise ScalePlanError("--tokens needs --params too (or use --flops)")
    out = {"name": law.name, "form": law.form, "law_params": dict(law.params), "flops": C, "params": None,
           "tokens": None, "tokens_per_param": None, "loss": None, "exponents": law.exponents()}
    if C is not None:
        Nopt, Dopt = law.optimal(C)
        out.update(params=Nopt, tokens=Dopt, tokens_per_param=Dopt / Nopt,
                   loss=law.loss(Nopt, Dopt) if law.has_loss else None)
    elif N is not None:
        out.update(params=N, tokens=D, tokens_per_param=(D / N) if D else None,
                   loss=law.loss(N, D) if law.has_loss else None, flops=(6 * N * D) if D else None)
    if as_json:
        emit_json(out)
    else:
        console().print(law_panel(law, out))


# ------------------------------------------------------------------------------------------------ fit
def _parse_cols(cols: list[str]) -> dict[str, str]:
    out = {}
    for c in cols or []:
        if "=" not in c:
            raise ScalePlanError(f"--col {c!r}: use ROLE=COLUMN, e.g. --col loss=val_loss")
        k, v = c.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _check_writable(path: Path | None, force: bool, flag: str) -> None:
    from .io.files import check_output_path

    if path is not None:
        check_output_path(path, force, flag)


def _distinct_outputs(*flag_paths) -> None:
    """Two output options naming one file would leave a half-written state: refuse before any work."""
    seen: dict = {}
    for flag, p in flag_paths:
        if p is None:
            continue
        key = p.resolve()
        if key in seen:
            raise ScalePlanError(f"{seen[key]} and {flag} both name {p}; give each output its own file")
        seen[key] = flag


# The fitting methods, one clause each: fitting.registry.help_text(), written out so that building the CLI does not
# import the fitting modules (and numpy) at start-up; tests/test_fitting_mechanisms.py checks the two agree.
FIT_METHODS_HELP = (
    'kaplan_N (L(N) power law on the best final loss per model size); kaplan_D (L(D) power law on the '
    'best final loss per token count); kaplan_C (L(C) power law on the compute frontier of every '
    'checkpoint); kaplan_ND (Kaplan joint L(N, D) on final losses); approach1 (Chinchilla envelope of the'
    ' per-run training curves); approach2 (Chinchilla IsoFLOP minima on final losses: parabolas, or --vertex '
    'interpolated); approach3 (Chinchilla parametric E + A/N^alpha + B/D^beta on final losses); data_constrained '
    '(Muennighoff et al. repeated-data law, R_D* and R_N*, on runs with a unique-tokens or epochs column)'
)


@app.command("fit")
def fit_cmd(
    path: Path = typer.Argument(..., help="Run log: CSV, TSV, JSON Lines, JSON array or Parquet."),
    method: str | None = typer.Option(None, "--method", metavar="NAME", help="Comma-separated methods (default: all the "
                                      "data supports): " + FIT_METHODS_HELP + "."),
    col: list[str] = typer.Option([], "--col", metavar="ROLE=COLUMN", help="Map a column: ROLE=COLUMN (roles: run, N, D, C, loss, step, "
                                  "budget, U = unique tokens, epochs (U = D/epochs)); join columns into a run id with "
                                  "run=a+b."),
    flops_unit: str = typer.Option("flops", "--flops-unit", metavar="UNIT", help="Unit of the compute column: flops or pf-days."),
    param_count: str = typer.Option("total", "--param-count", metavar="KIND", help="What N counts: total or non-embedding."),
    loss_unit: str | None = typer.Option(None, "--loss-unit", metavar="UNIT", help="Unit of the loss column: nats (default), "
                                         "bits or ppl (perplexity)."),
    log10: str | None = typer.Option(None, "--log10", metavar="COLUMN[,COLUMN]", help="Columns holding log10 of the value "
                                     "(e.g. log10 FLOPs)."),
    where: str | None = typer.Option(None, "--where", metavar="EXPR", help="Keep the rows where EXPR holds, over the file's "
                                     "column names, pandas query syntax (e.g. 'dataset == \"c4\" and N > 1e8')."),
    group_by: str | None = typer.Option(None, "--group-by", metavar="COL[,COL]", help="One fit per condition (the values of "
                                        "these columns) and a comparison at one budget; --save writes one law per group "
                                        "(FILE.<group>.json)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", metavar="N", help="Bootstrap replicates (runs resampled); 0 disables."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed for the bootstrap."),
    offset: bool = typer.Option(False, "--offset", help="Kaplan single-variable laws with an offset E."),
    loss: str = typer.Option("huber", "--loss", metavar="NAME", help="Objective on log loss: huber, mse or asymmetric."),
    huber_delta: float = typer.Option(1e-3, "--huber-delta", metavar="DELTA", help="Huber delta on log loss."),
    asymmetry: float = typer.Option(10.0, "--asymmetry", metavar="WEIGHT", help="Over-prediction weight of --loss asymmetric."),
    at_flops: str | None = typer.Option(None, "--at-flops", metavar="FLOPS", help="Budget (FLOPs) for derived N_opt, D_opt and "
                                           "loss (default: the largest compute in the data)."),
    holdout: int = typer.Option(0, "--holdout", metavar="K", help="Refit without the K largest-compute runs and report the "
                                "relative error of the predicted loss on them."),
    holdout_by: str = typer.Option("compute", "--holdout-by", metavar="KIND", help="What --holdout holds out: compute (the K "
                                   "largest-compute runs) or size (every run of the K largest model sizes)."),
    drop_top_loss: int = typer.Option(0, "--drop-top-loss", metavar="K", help="Drop the K highest-loss points first "
                                      "(Epoch dropped 5 of Chinchilla's 245)."),
    budget_tol: float = typer.Option(0.1, "--budget-tol", metavar="FRACTION", help="Relative tolerance for grouping compute into "
                                     "IsoFLOP budgets when there is no budget column."),
    vertex: str = typer.Option("parabola", "--vertex", metavar="KIND", help="approach2's IsoFLOP minimum: parabola "
                               "(Hoffmann) or interpolated (Porian et al. 2024: Akima spline, noise bootstrap, weighted "
                               "fit)."),
    loss_noise: float | None = typer.Option(None, "--loss-noise", metavar="NATS", help="Seed-to-seed std of the loss for "
                                            "--vertex interpolated (default 0.002, Porian et al.'s RefinedWeb value)."),
    base_law: str | None = typer.Option(None, "--base-law", metavar="NAME|FILE", help="data_constrained: keep this law's E, "
                                        "A, B, alpha, beta (default: fit them to the single-epoch runs)."),
    tie_exponents: bool = typer.Option(False, "--tie-exponents", help="approach3: one exponent for N and D, alpha = beta "
                                       "(Gadre et al. 2024; 4 parameters, so 5 points suffice)."),
    screen: str = typer.Option("varpro", "--screen", metavar="KIND", help="approach3's starts: varpro (variable projection "
                               "over an exponent grid, then the best few polished) or grid (Hoffmann's 4,500 starts)."),
    save: Path | None = typer.Option(None, "--save", metavar="FILE", help="Write the fitted law(s) as JSON (fits/ format)."),
    report: Path | None = typer.Option(None, "--report", metavar="FILE", help="Write an HTML or Markdown report."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing --save/--report files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
):
    """Fit Kaplan power laws and Chinchilla Approaches 1-3 to a run log, with bootstrap intervals."""
    from .units import parse_positive

    _distinct_outputs(("--save", save), ("--report", report))
    _check_writable(save, None if group_by else force, "--save")  # groups: STEM.<group>.json, checked when known
    if report is not None:
        from .render.report import check_report_path

        check_report_path(report, force=force)
    from .fitting import fit
    from .io.runlog import load_runs

    save_paths = {}
    if group_by is not None:  # one table and one fit per condition: the rest of the command is the same
        from .fitting import fit_groups as fit
        from .io.runlog import load_run_groups

        table = load_run_groups(path, _parse_cols(col), group_by=group_by, where=where, flops_unit=flops_unit,
                                param_count=param_count, loss_unit=loss_unit, log10=log10 or ())
        save_paths = _group_save_paths(save, table, force, report)
    else:
        table = load_runs(path, _parse_cols(col), flops_unit=flops_unit, param_count=param_count,
                          loss_unit=loss_unit, log10=log10 or (), where=where)
    methods = [m.strip() for m in method.split(",") if m.strip()] if method else None
    af = parse_positive(at_flops, "--at-flops") if at_flops else None
    kwargs = dict(bootstrap=bootstrap, seed=seed, offset=offset, loss=loss, delta=huber_delta, asymmetry=asymmetry,
                  at_flops=af, holdout=holdout, drop_top_loss=drop_top_loss, budget_tol=budget_tol)
    kwargs["holdout_by"] = holdout_by
    kwargs.update(vertex=vertex, loss_noise=loss_noise)
    kwargs.update(tie_exponents=tie_exponents, screen=screen)
    if base_law is not None:
        from .io.law_file import load_law

        kwargs["base_law"] = load_law(base_law)
    if as_json:
        rep = fit(table, methods, **kwargs)
    else:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        err = console(stderr=True)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as prog:  # no progress noise in logs and pipes
            task = prog.add_task("loading", total=None)
            # (method, done, total) per bootstrap replicate; done == 0: a method starts (fresh bar and ETA)
            rep = fit(table, methods, progress=lambda m, done, total: (
                prog.reset(task, total=total or None, description=f"fitting {m}"
                           + (f" (bootstrap of {total})" if total else ""))
                if done == 0 else
                prog.update(task, total=total, completed=done, description=f"fitting {m} (bootstrap "
                            f"{done}/{total})")), **kwargs)
    if where is not None and group_by is None:  # recorded with the fit (and a saved law's fit.options)
        from dataclasses import replace

        rep = replace(rep, options={**rep.options, "where": where})
    saved, unsaved = [], {}
    if save is not None and group_by is not None:
        saved, unsaved = _save_group_laws(rep, save, save_paths, force)
    elif save is not None:
        saved = [rep.to_law(save.stem).save(save, force=force)]
    if report is not None:
        from .render.report import write_fit_report, write_grouped_fit_report

        _headless_plots()
        (write_fit_report if group_by is None else write_grouped_fit_report)(rep, report, command=_command_line(),
                                                                             force=force)
    if as_json:
        emit_json(rep.to_dict())
    else:
        from .render.terminal import fit_view, grouped_fit_view

        c = console()
        c.print(fit_view(rep) if group_by is None else grouped_fit_view(rep))
        for p in saved:
            c.print(f"saved law to {p} (use: scaleplan budget --law {p} ...)")
        for g, why in unsaved.items():
            c.print(f"no law saved for group {g}: {why}")
        if report is not None:
            c.print(f"wrote report {report}")


def _group_save_paths(save: Path | None, groups, force: bool, report: Path | None) -> dict:
    """--save with --group-by: {group: path}. One group (or one selected with --where): the path itself; several:
    STEM.<group slug>.json beside it. Every path is checked before any fit, so nothing is overwritten without
    --force and a refusal comes before any work."""
    from .io.conditions import group_slug
    from .io.files import check_output_path

    if save is None:
        return {}
    names = [*groups, *getattr(groups, "skipped", {})]
    if len(names) == 1:
        paths = {names[0]: save}
    else:
        paths, used = {}, set()
        for g in names:
            slug = group_slug(g)
            stem, i = slug, 2
            while stem.lower() in used:  # two groups whose names differ only in symbols or case
                stem, i = f"{slug}-{i}", i + 1
            used.add(stem.lower())
            paths[g] = save.with_name(f"{save.stem}.{stem}{save.suffix or '.json'}")
    for p in paths.values():
        check_output_path(p, force, "--save")
    _distinct_outputs(("--report", report), *(("--save", p) for p in paths.values()))
    return paths


def _save_group_laws(rep, save: Path, paths: dict, force: bool):
    """Write each fitted group's law to its path; (paths written, {group: why no law})."""
    laws, missing = rep.to_laws(save.stem)
    if not laws:
        raise ScalePlanError("no group gave a usable law, so there is nothing to save: " + "; ".join(
            f"{g}: {why}" for g, why in missing.items()))
    return [law.save(paths[g], force=force) for g, law in laws.items()], missing


# ------------------------------------------------------------------------------------------------ budget
@app.command("budget")
def budget_cmd(
    flops: str | None = typer.Option(None, "--flops", metavar="FLOPS", help="Training compute C in FLOPs (e.g. 1e23)."),
    gpus: int | None = typer.Option(None, "--gpus", metavar="N", help="Number of GPUs (with --days: the budget)."),
    days: float | None = typer.Option(None, "--days", metavar="DAYS", help="Wall-clock days (with --gpus)."),
    params: str | None = typer.Option(None, "--params", metavar="N", help="Fix the parameter count N."),
    tokens: str | None = typer.Option(None, "--tokens", metavar="D", help="Fix the training tokens D."),
    target_loss: float | None = typer.Option(None, "--target-loss", metavar="LOSS", help="Smallest compute that reaches this loss."),
    gpu: str | None = typer.Option(None, "--gpu", metavar="NAME", help="GPU type (see `scaleplan gpus`); default a100-80."),
    law: str = typer.Option("epoch2024", "--law", metavar="NAME|FILE", help="Catalogue name or a law file from `scaleplan fit --save`."),
    compare: str | None = typer.Option(None, "--compare", metavar="LAW[,LAW]", help="Comma-separated laws to compare (default: two "
                                       "published ones)."),
    mfu: float | None = typer.Option(None, "--mfu", metavar="FRACTION", help="Override the step-time model: time = C / (GPUs x "
                                     "peak x MFU x goodput), MFU in 6N counting against the dense BF16 peak."),
    goodput: float = typer.Option(0.9, "--goodput", metavar="FRACTION", help="Fraction of wall-clock doing useful steps."),
    price: float | None = typer.Option(None, "--price", metavar="USD", help="$ per GPU-hour (default: the catalogue's)."),
    prices: Path | None = typer.Option(None, "--prices", metavar="FILE", help="JSON/TOML file of $/GPU-hour by GPU name."),
    seq_len: int = typer.Option(4096, "--seq-len", metavar="TOKENS", help="Sequence length in tokens (enters attention FLOPs and activation memory)."),
    global_batch: int | None = typer.Option(None, "--global-batch", metavar="SEQUENCES", help="Sequences per step (default: DeepSeek "
                                            "B_opt for the budget)."),
    vocab: int | None = typer.Option(None, "--vocab", metavar="SIZE", help="Vocabulary size of the planned model "
                                     "(default 32000, or the given model's)."),
    model: str | None = typer.Option(None, "--model", metavar="NAME", help="Plan this model (a preset, see `scaleplan "
                                     "memory --list-models`): it fixes N."),
    config: Path | None = typer.Option(None, "--config", metavar="FILE", help="Plan the model of a Hugging Face config.json."),
    layers: int | None = typer.Option(None, "--layers", metavar="N", help="Transformer layers (with --d-model, --heads)."),
    d_model: int | None = typer.Option(None, "--d-model", metavar="N", help="Hidden size."),
    heads: int | None = typer.Option(None, "--heads", metavar="N", help="Attention heads."),
    kv_heads: int | None = typer.Option(None, "--kv-heads", metavar="N", help="Key/value heads (GQA; default = heads)."),
    ffn: int | None = typer.Option(None, "--ffn", metavar="N", help="MLP hidden size."),
    experts: int | None = typer.Option(None, "--experts", metavar="E", help="MoE: routed experts per layer (with "
                                       "--top-k); N is then the active parameter count, C = 6·N_active·D."),
    top_k: int | None = typer.Option(None, "--top-k", metavar="K", help="MoE: experts each token is routed to."),
    shared_experts: int | None = typer.Option(None, "--shared-experts", metavar="N", help="MoE: always-active "
                                              "experts of the routed width (DeepSeekMoE / Qwen-MoE)."),
    active_params: str | None = typer.Option(None, "--active-params", metavar="N", help="MoE without a shape: the "
                                             "active parameter count (--params is then the total)."),
    precision: str = typer.Option("bf16", "--precision", metavar="NAME", help="GEMM precision: bf16 | fp8 "
                                  "(Transformer Engine; --framework megatron on an FP8 GPU)."),
    framework: str = typer.Option("megatron", "--framework", metavar="NAME", help="Training stack the plan is costed "
                                  "for: megatron | deepspeed | hf | torchtune."),
    tp: int | None = typer.Option(None, "--tp", metavar="N", help="Fix the tensor-parallel size (default: searched)."),
    pp: int | None = typer.Option(None, "--pp", metavar="N", help="Fix the pipeline-parallel size (default: searched)."),
    dp: int | None = typer.Option(None, "--dp", metavar="N", help="Fix the data-parallel size; --tp --pp --dp together "
                                  "fix the GPU count and the layout is checked, not searched."),
    ep: int | None = typer.Option(None, "--ep", metavar="N", help="Fix the expert-parallel size (MoE; divides the "
                                  "experts and --dp; default: searched)."),
    micro_batch: int | None = typer.Option(None, "--micro-batch", metavar="N", help="Fix the sequences per micro-batch "
                                           "per GPU."),
    zero: str | None = typer.Option(None, "--zero", metavar="STAGE", help="Fix the ZeRO stage 0-3 or FSDP name "
                                    "(no_shard, shard_grad_op, full_shard)."),
    recompute: str | None = typer.Option(None, "--recompute", metavar="MODE", help="Fix activation recomputation: "
                                         "none | selective | full."),
    sp: bool | None = typer.Option(None, "--sp/--no-sp", help="Fix sequence parallelism (with TP; default on)."),
    gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", metavar="N", help="GPUs per node (default: the GPU's usual node, e.g. 8)."),
    max_gpus: int | None = typer.Option(None, "--max-gpus", metavar="N", help="Largest cluster to plan for; the plan takes longer when this caps it."),
    deadline_days: float | None = typer.Option(None, "--deadline-days", metavar="DAYS", help="Fewest GPUs that finish in time."),
    inference_tokens: str | None = typer.Option(None, "--inference-tokens", metavar="TOKENS", help="Lifetime inference tokens "
                                                "(Sardana et al.: train smaller and longer)."),
    unique_tokens: str | None = typer.Option(None, "--unique-tokens", metavar="TOKENS", help="Unique tokens available (Muennighoff "
                                             "et al.: repeated epochs)."),
    emit: tuple[str, str] | None = typer.Option(None, "--emit", metavar="KIND PATH",
                                                help="Write the launch file of the planned layout: --emit megatron "
                                                     "args.sh (Megatron-LM arguments; any TP/PP/EP), --emit deepspeed "
                                                     "ds.json (--framework deepspeed, TP 1, PP 1) or --emit fsdp "
                                                     "fsdp.yaml (accelerate; --framework hf, TP 1, PP 1)."),
    report: Path | None = typer.Option(None, "--report", metavar="FILE", help="Write an HTML or Markdown report."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing --emit/--report files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
):
    """From a compute budget to model size, tokens, a memory-checked parallel layout, time and cost."""
    from .planner import plan_budget

    emits = _parse_emits(emit)
    _distinct_outputs(*[("--emit", p) for _, p in emits], ("--report", report))
    for _, p in emits:
        _check_writable(p, force, "--emit")
    if emits:  # a stack that cannot run the pinned layout is refused before planning (docs/planning.md §4.5)
        from .render.emit import check_emittable

        for kind, _ in emits:
            check_emittable(kind, framework=framework, tp=tp, pp=pp, recompute=recompute)
    if report is not None:
        from .render.report import check_report_path

        check_report_path(report, force=force)
    price_table = None
    if prices is not None:
        from .io.prices import load_prices

        price_table = load_prices(prices)
    shape, law_experts = None, (None, None, None)
    if any(x is not None for x in (model, config, layers, d_model, heads, kv_heads, ffn)):
        if params is not None or active_params is not None:
            raise ScalePlanError(f"give {'--params' if params is not None else '--active-params'} or a model "
                                 "(--model, --config, --layers/--d-model/--heads), not both")
        shape = _shape_from_options(model, config, None, layers, d_model, heads, kv_heads, None, ffn, vocab, None,
                                    None, experts, top_k, shared_experts)
    elif active_params is not None or (params is not None and (experts is not None or top_k is not None)):
        shape = _moe_from_counts(_num(params, "--params"), _num(active_params, "--active-params"), experts, top_k,
                                 32000 if vocab is None else vocab, shared_experts or 0)
        params = None
    else:
        law_experts = (experts, top_k, shared_experts)
    kw = dict(flops=_num(flops, "--flops"), gpus=gpus, days=days, params=_num(params, "--params"),
              tokens=_num(tokens, "--tokens"), target_loss=target_loss, gpu=gpu or "a100-80", law=law, mfu=mfu,
              goodput=goodput, price=price, seq_len=seq_len, global_batch=global_batch,
              vocab=32000 if vocab is None else vocab, shape=shape, framework=framework, tp=tp, pp=pp, dp=dp,
              micro_batch=micro_batch, zero=None if zero is None else parse_zero(zero), recompute=recompute, sp=sp,
              ep=ep, precision=precision, experts=law_experts[0], top_k=law_experts[1],
              shared_experts=law_experts[2] or 0,
              gpus_per_node=gpus_per_node, max_gpus=max_gpus, deadline_days=deadline_days,
              inference_tokens=_num(inference_tokens, "--inference-tokens"),
              unique_tokens=_num(unique_tokens, "--unique-tokens"),
              compare=tuple(x.strip() for x in compare.split(",")) if compare else None, prices=price_table,
              scan=report is not None)  # the report's time/cost-vs-GPUs figure
    if days is not None and not days > 0:
        raise ScalePlanError("--days must be a positive number")
    plan = plan_budget(**kw)
    written = []
    if emits:
        from .render.emit import emit_text

        texts = [(kind, p, emit_text(plan, kind)) for kind, p in emits]  # all refusals before any file is written
        for kind, p, text in texts:
            p.write_text(text)
            written.append(f"wrote {kind} launch file {p} (micro-batch {plan.layout.micro_batch} x accumulation "
                           f"{plan.layout.grad_accum} x DP {plan.layout.dp} = {plan.global_batch} sequences)")
    if report is not None:
        from .render.report import write_plan_report

        _headless_plots()
        write_plan_report(plan, report, command=_command_line(), force=force)
        written.append(f"wrote report {report}")
    if as_json:
        emit_json(plan.to_dict())
    else:
        from .render.terminal import plan_view

        c = console()
        c.print(plan_view(plan))
        for w in written:
            c.print(w)


def _moe_from_counts(params: float | None, active: float | None, experts: int | None, top_k: int | None,
                     vocab: int, shared: int = 0):
    """The MoE shape of ``budget --active-params [--params] --experts --top-k`` (model.moe_shape on the dense shape of
    the active count; --params, when given, the total)."""
    from .model import moe_shape, shape_for_params

    if experts is None or top_k is None:
        raise ScalePlanError("an MoE by parameter counts needs --experts and --top-k (with --active-params, and "
                             "--params as the total)", param=("experts", "top_k"))
    if active is None:
        raise ScalePlanError("--params with --experts is the total: give --active-params too (the active count "
                             "sets compute, C = 6·N_active·D), or the shape (--model, --config, --layers ...)",
                             param="active_params")
    if params is not None and params <= active:
        raise ScalePlanError(f"--params {params:.3g} (the total) must exceed --active-params {active:.3g}",
                             param=("params", "active_params"))
    return moe_shape(shape_for_params(active, vocab=vocab), experts, top_k, total=params, shared=shared)


def _parse_emits(emit: tuple[str, str] | None) -> list[tuple[str, Path]]:
    if not emit:
        return []
    from .render.emit import EMITTERS

    kind, path = emit[0].strip().lower(), emit[1]
    if kind not in EMITTERS or not path:
        raise ScalePlanError(f"--emit {emit[0]} {emit[1]}: use --emit KIND PATH with KIND one of "
                             f"{', '.join(EMITTERS)}")
    return [(kind, Path(path))]


# ------------------------------------------------------------------------------------------------ memory
def resolve_shape(model: str | None = None, config: str | None = None, params: float | None = None,
                  vocab: int | None = None, **explicit):
    """One ModelShape from the CLI's ways of naming a model: a preset, a config.json, a parameter count, or explicit
    dimensions (``layers``, ``d_model``, ``heads``, ...); explicit values override the preset/config fields."""
    from dataclasses import replace

    from .io.hf_config import from_hf_config
    from .model import ModelShape, get_preset, shape_for_params

    ren = {"layers": "n_layers", "heads": "n_heads", "kv_heads": "n_kv_heads", "tied": "tied_embeddings",
           "experts": "n_experts", "gated": "gated_mlp"}
    kw = {ren.get(k, k): v for k, v in explicit.items() if v is not None}
    given = [x for x in (model, config, params) if x is not None]
    if len(given) > 1:
        raise ScalePlanError("give one of --model, --config or --params")
    if model is not None:
        base = get_preset(model)
    elif config is not None:
        base = from_hf_config(config)
    elif params is not None:
        base = shape_for_params(params, vocab=32000 if vocab is None else vocab)
        vocab = None
    else:
        need = [k for k in ("n_layers", "d_model", "n_heads") if k not in kw]
        if need:
            raise ScalePlanError("name a model: --model NAME (see --list-models), --config config.json, "
                                 "--params N, or --layers/--d-model/--heads[/--vocab ...]")
        kw.setdefault("vocab", 32000 if vocab is None else vocab)
        return ModelShape(**kw)
    if vocab is not None:
        kw["vocab"] = vocab
    if kw:
        if "d_model" in kw and "head_dim" not in kw and "n_heads" not in kw:
            kw["head_dim"] = None
        return replace(base, name=f"{base.name} (modified)", **kw)
    return base


def _shape_from_options(model, config, params, layers, d_model, heads, kv_heads, head_dim, ffn, vocab, gated, tied,
                        experts, top_k, shared_experts=None):
    N = _num(params, "--params")
    return resolve_shape(model=model, config=str(config) if config else None, params=N, vocab=vocab,
                         layers=layers, d_model=d_model, heads=heads, kv_heads=kv_heads, head_dim=head_dim, ffn=ffn,
                         gated=gated, tied=tied, experts=experts, top_k=top_k, shared_experts=shared_experts)


# FSDP sharding-strategy names for --zero (docs/memory.md §2)
ZERO_ALIASES = {"0": 0, "1": 1, "2": 2, "3": 3, "no_shard": 0, "ddp": 0, "shard_grad_op": 2, "full_shard": 3,
                "hybrid_shard": 3, "fsdp": 3, "none": 0}
LORA_TARGET_ALIASES = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
                       "down_proj": "down", "w1": "gate", "w3": "up", "w2": "down", "output_proj": "o"}


def parse_zero(value: str | int) -> int:
    """--zero: a ZeRO stage 0-3 or an FSDP sharding-strategy name."""
    key = str(value).strip().lower().replace("-", "_")
    if key not in ZERO_ALIASES:
        raise ScalePlanError(f"--zero must be 0, 1, 2, 3 or an FSDP name (no_shard, shard_grad_op, full_shard, "
                             f"hybrid_shard), got {value!r}")
    return ZERO_ALIASES[key]


def parse_targets(text: str) -> tuple[str, ...]:
    """--lora-targets: comma-separated linears (scaleplan, Hugging Face or torchtune names) or all-linear."""
    from .model import LINEARS

    if text.strip().lower() in ("all", "all-linear", "all_linear"):
        return LINEARS
    out = []
    for t in text.split(","):
        t = LORA_TARGET_ALIASES.get(t.strip(), t.strip())
        if t not in LINEARS:
            raise ScalePlanError(f"--lora-targets: unknown module {t!r}; use q,k,v,o,gate,up,down or all-linear")
        out.append(t)
    return tuple(dict.fromkeys(out))


@app.command("memory")
def memory_cmd(
    model: str | None = typer.Option(None, "--model", metavar="NAME", help="Preset name (see --list-models)."),
    config: Path | None = typer.Option(None, "--config", metavar="FILE", help="Hugging Face config.json."),
    params: str | None = typer.Option(None, "--params", metavar="N", help="Parameter count alone: a Llama-like shape."),
    layers: int | None = typer.Option(None, "--layers", metavar="N", help="Transformer layers."), d_model: int | None = typer.Option(None, "--d-model", metavar="N", help="Hidden size."),
    heads: int | None = typer.Option(None, "--heads", metavar="N", help="Attention heads."), kv_heads: int | None = typer.Option(None, "--kv-heads", metavar="N", help="Key/value heads (GQA; default = heads)."),
    head_dim: int | None = typer.Option(None, "--head-dim", metavar="N", help="Head dimension (default d_model/heads)."), ffn: int | None = typer.Option(None, "--ffn", metavar="N", help="MLP hidden size."),
    vocab: int | None = typer.Option(None, "--vocab", metavar="SIZE", help="Vocabulary size."),
    gated: bool | None = typer.Option(None, "--gated-mlp/--no-gated-mlp", help="SwiGLU/GeGLU (3 matrices)."),
    tied: bool | None = typer.Option(None, "--tied/--untied", help="Tied input/output embeddings."),
    experts: int | None = typer.Option(None, "--experts", metavar="N", help="MoE experts per layer (all held in memory)."), top_k: int | None = typer.Option(None, "--top-k", metavar="K", help="MoE experts active per token."),
    shared_experts: int | None = typer.Option(None, "--shared-experts", metavar="N", help="MoE: always-active experts "
                                              "of the routed width (DeepSeekMoE / Qwen-MoE)."),
    list_models: bool = typer.Option(False, "--list-models", help="List the model presets and exit."),
    gpu: str | None = typer.Option(None, "--gpu", metavar="NAME", help="Check the estimate against this GPU's memory."),
    precision: str | None = typer.Option(None, "--precision", metavar="NAME", help="fp32 | amp | mixed | mixed-fp32-grads | bf16 | "
                                         "fp16 | fp8 (default: the framework's). fp8: Transformer Engine FP8 GEMMs "
                                         "(--framework megatron): mixed-fp32-grads states + cached FP8 weight copies, "
                                         "FP8 GEMM inputs."),
    optimizer: str = typer.Option("adamw", "--optimizer", metavar="NAME", help="adamw | adamw-8bit | paged-adamw-8bit | "
                                  "paged-adamw-32bit | sgd | sgd-momentum | lion | adafactor (paged: states in CUDA "
                                  "unified memory, in the device peak only)"),
    zero: str = typer.Option("0", "--zero", metavar="STAGE", help="ZeRO stage 0-3 or FSDP name (no_shard, shard_grad_op, "
                             "full_shard)."),
    gpus: int = typer.Option(1, "--gpus", metavar="N", help="GPUs in the job."), tp: int = typer.Option(1, "--tp", metavar="N", help="Tensor-parallel size."), pp: int = typer.Option(1, "--pp", metavar="N", help="Pipeline-parallel size."),
    dp: int | None = typer.Option(None, "--dp", metavar="N", help="Data-parallel size (default: gpus/(tp·pp))."),
    sp: bool = typer.Option(False, "--sp", help="Sequence parallelism (with TP)."),
    offload: str = typer.Option("none", "--offload", metavar="WHAT", help="none | optimizer | params"),
    seq_len: int = typer.Option(4096, "--seq-len", metavar="TOKENS", help="Sequence length in tokens."), micro_batch: int = typer.Option(1, "--micro-batch", metavar="N", help="Sequences per micro-batch per GPU."),
    grad_accum: int = typer.Option(1, "--grad-accum", metavar="N", help="Micro-batches per step (PP in-flight, grads alive)."),
    recompute: str = typer.Option("none", "--recompute", metavar="MODE", help="none | selective | full"),
    attention: str = typer.Option("flash", "--attention", metavar="KIND", help="flash | eager"),
    chunked_ce: bool = typer.Option(False, "--chunked-ce", help="Chunked/fused cross-entropy (no full logits)."),
    optimizer_in_bwd: bool = typer.Option(False, "--optimizer-in-bwd", help="torchtune optimizer_in_bwd: each "
                                          "parameter steps in backward and its gradient is freed (no gradient buffer; "
                                          "needs --grad-accum 1)."),
    activation_offload: bool = typer.Option(False, "--activation-offload", help="torchtune activation offloading: "
                                            "the full-recompute checkpoints live in CPU RAM (needs --recompute full)."),
    dropout: float = typer.Option(0.0, "--dropout", metavar="P", help="Hidden dropout (masks are saved when > 0)."),
    method: str = typer.Option("full", "--method", metavar="NAME", help="full | lora | qlora"),
    lora_rank: int = typer.Option(16, "--lora-rank", metavar="R", help="LoRA rank r."),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", metavar="LIST", help="q,k,v,o,gate,up,down or all-linear."),
    lora_dtype: str | None = typer.Option(None, "--lora-dtype", metavar="DTYPE", help="fp32 | bf16 (default: the framework's)."),
    lora_dropout: float = typer.Option(0.0, "--lora-dropout", metavar="P", help="LoRA dropout (a copy of each adapted input is saved when > 0)."),
    framework: str = typer.Option("hf", "--framework", metavar="NAME", help="hf (transformers + PEFT, the default) | megatron | deepspeed | torchtune | generic"),
    cuda_context_gib: float = typer.Option(1.0, "--cuda-context-gib", metavar="GIB", help="CUDA context + workspaces."),
    fragmentation: float = typer.Option(0.05, "--fragmentation", metavar="FRACTION", help="Allocator headroom (reserved/allocated - 1)."),
    peak_kind: str = typer.Option("device", "--peak-kind", metavar="KIND", help="allocated | reserved | device"),
    inference: bool = typer.Option(False, "--inference", help="Inference: weights + KV cache."),
    batch: int = typer.Option(1, "--batch", metavar="N", help="Inference batch."),
    context: int | None = typer.Option(None, "--context", metavar="TOKENS", help="Inference context length (default --seq-len)."),
    solve: str | None = typer.Option(None, "--solve", metavar="VAR", help="What fits --gpu: the largest seq-len | "
                                     "micro-batch | lora-rank, or the smallest gpus (with the next value's estimate)."),
    measure: bool = typer.Option(False, "--measure", help="Also run 3 real training steps on the local GPU (random "
                                 "weights; needs scaleplan[measure]) and show the measured peaks beside the estimate."),
    report: Path | None = typer.Option(None, "--report", metavar="FILE", help="Write an HTML or Markdown report."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --report file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
):
    """Per-GPU training memory (weights, grads, optimizer, activations, logits) checked against a GPU."""
    from .memory import MemoryConfig, estimate_memory

    if list_models:
        from .model import PRESETS
        from .render.terminal import models_table

        if as_json:
            emit_json([s.describe() for s in PRESETS.values()])
        else:
            console().print(models_table(PRESETS.values()))
        return
    if report is not None:
        from .render.report import check_report_path

        check_report_path(report, force=force)
    shape = _shape_from_options(model, config, params, layers, d_model, heads, kv_heads, head_dim, ffn, vocab, gated,
                                tied, experts, top_k, shared_experts)
    g = None
    if gpu:
        from .hardware import get_gpu

        g = get_gpu(gpu)
    cfg = MemoryConfig(precision=precision, optimizer=optimizer, zero=parse_zero(zero), gpus=gpus, tp=tp, pp=pp,
                       dp=dp, sp=sp, offload=offload, seq_len=seq_len, micro_batch=micro_batch, grad_accum=grad_accum,
                       recompute=recompute, attention=attention, chunked_ce=chunked_ce, dropout=dropout,
                       optimizer_in_bwd=optimizer_in_bwd, activation_offload=activation_offload,
                       method=method, lora_rank=lora_rank, lora_targets=parse_targets(lora_targets),
                       lora_dtype=lora_dtype, lora_dropout=lora_dropout, framework=framework,
                       cuda_context_gib=cuda_context_gib, fragmentation=fragmentation, peak_kind=peak_kind,
                       inference=inference, batch=batch, context=context)
    sol = measured = None
    if solve is not None:
        from .memory.solve import solve as solve_fit

        sol = solve_fit(shape, cfg, g, solve)
        est = sol.estimate
    else:
        est = estimate_memory(shape, cfg, g)
    if measure:
        from .measure import measure_plan, run_measure

        hf = None
        if config is not None:
            from .io.files import read_json

            hf = read_json(config, "config.json")
        measured = run_measure(measure_plan(shape, est.config, hf))
    if report is not None:
        from .render.report import write_memory_report

        _headless_plots()
        write_memory_report(est, report, command=_command_line(), force=force)
    if as_json:
        d = est.to_dict()
        if sol is not None:
            d["solve"] = sol.to_dict()
        if measured is not None:
            d["measured"] = measured.to_dict(est)
        emit_json(d)
    else:
        from .render.terminal import measured_table, memory_view, solve_line

        console().print(memory_view(est))
        if sol is not None:
            console().print(solve_line(sol))
        if measured is not None:
            console().print(measured_table(est, measured))
        if report is not None:
            console().print(f"wrote report {report}")


@app.command("gpus")
def gpus_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """The GPU catalogue: usable memory, dense peak TFLOP/s, bandwidth, default price."""
    from .hardware import list_gpus
    from .render.terminal import gpus_table

    gs = list_gpus()
    if as_json:
        emit_json([g.describe() for g in gs])
    else:
        console().print(gpus_table(gs))


def _headless_plots() -> None:
    """The CLI renders report figures off-screen: it, and only it, picks matplotlib's Agg backend (the library never
    does, so notebooks keep theirs)."""
    import matplotlib

    matplotlib.use("Agg")


def _command_line() -> str:
    import shlex

    return "scaleplan " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _plain_option_coercion() -> None:
    """Parse the CLI's options without pydantic. typer >= 0.29 coerces each option through a pydantic TypeAdapter,
    built when the option is first parsed: importing pydantic and building one adapter per option costs ~0.3 s on
    every command. Every option here is a str, int, float, bool or Path (optional, or a list or pair of str): those
    get click's coercion and messages ("'x' is not a valid integer."), as with typer < 0.29; anything else, and any
    option with constraints (min/max, a parser, path checks), is left to typer. No-op on typer < 0.29."""
    try:
        from typer import core as typer_core
        from typer._coercion import RuntimeParam
    except ImportError:
        return
    cls = getattr(typer_core, "_TyperParameter", None)
    if cls is None or not hasattr(cls, "get_runtime_param") or getattr(cls, "_scaleplan_plain", False):
        return
    import dataclasses
    import types
    import typing

    @dataclasses.dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        convert: typing.Any = None

        def _coerce_value(self, value, param=None, ctx=None, *args, **kwargs):
            if args or kwargs:  # a typer whose private signature changed: its own coercion, not ours
                return super()._coerce_value(value, param, ctx, *args, **kwargs)
            try:
                return self.convert(value)
            except (TypeError, ValueError) as e:
                raise typer.BadParameter(str(e), ctx=ctx, param=param) from None

    def number(kind, name):
        def convert(v):
            if isinstance(v, kind) and not isinstance(v, bool):
                return v
            try:
                return kind(v)
            except (TypeError, ValueError):
                raise ValueError(f"{v!r} is not a valid {name}.") from None
        return convert

    def boolean(v):
        if isinstance(v, bool):
            return v
        key = str(v).strip().lower()
        if key in ("1", "true", "t", "yes", "y", "on"):
            return True
        if key in ("0", "false", "f", "no", "n", "off"):
            return False
        raise ValueError(f"{v!r} is not a valid boolean.")

    leaves = {str: lambda v: v if isinstance(v, str) else str(v), int: number(int, "integer"),
              float: number(float, "float"), bool: boolean, Path: lambda v: v if isinstance(v, Path) else Path(v)}
    plain_path = {"exists": False, "resolve_path": False, "writable": False, "allow_dash": False, "file_okay": True,
                  "dir_okay": True, "readable": True, "path_type": None}

    def converter(annotation, info):
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            return converter(rest[0], info) if len(rest) == 1 else None
        if origin is list and len(args) == 1 and args[0] in leaves:
            one = leaves[args[0]]
            return lambda v: [one(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
        if origin is tuple and args and all(a in leaves for a in args):
            def pair(v, fns=tuple(leaves[a] for a in args)):
                if not isinstance(v, (list, tuple)) or len(v) != len(fns):
                    raise ValueError(f"{len(fns)} values are required, but {len(v)} given.")
                return tuple(f(x) for f, x in zip(fns, v))
            return pair
        if annotation is Path and any(getattr(info, k, d) != d for k, d in plain_path.items()):
            return None
        return leaves.get(annotation)

    original = cls.get_runtime_param

    def get_runtime_param(self):
        try:  # typer's private API: on any surprise, leave the option to typer's own coercion
            if getattr(self, "_runtime_param", None) is None:
                desc = getattr(self, "type_descriptor", None)
                info = getattr(desc, "parameter_info", None)
                plain = (desc is not None and getattr(desc, "file_annotation", None) is None
                         and getattr(info, "parser", None) is None and getattr(info, "min", None) is None
                         and getattr(info, "max", None) is None)
                fn = converter(desc.annotation, info) if plain else None
                if fn is not None:
                    self._runtime_param = PlainRuntimeParam(parameter_info=info, annotation=desc.annotation,
                                                            convert=fn)
        except Exception:  # noqa: BLE001
            pass
        return original(self)

    cls.get_runtime_param = get_runtime_param
    cls._scaleplan_plain = True


def _usage_error_class() -> type:
    """The CLI library's usage-error base class, whichever typer is installed.

    typer < 0.29 raises click's ``ClickException`` subclasses; typer >= 0.29 vendors click as ``typer._click`` (and
    click is no longer installed). Both expose it through ``typer.BadParameter``'s bases, so no click import."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return typer.BadParameter  # pragma: no cover - defensive


def print_error(message: str) -> None:
    """One line on stderr: ``error: MESSAGE``, the message printed literally (never as rich markup)."""
    from rich.text import Text

    line = " ".join(str(message).split())  # one line, whatever the message held
    console(stderr=True).print(Text.assemble(("error: ", "bold red"), line), soft_wrap=True)


def _usage_message(e) -> str:
    msg = e.format_message()
    ctx = getattr(e, "ctx", None)
    path = getattr(ctx, "command_path", None) if ctx is not None else None
    if path:
        name = path.split()[0]
        path = " ".join(["scaleplan", *path.split()[1:]]) if name != "scaleplan" else path
        msg = f"{msg.rstrip('.')} (see '{path} --help')"
    return msg


# Core errors name the keyword argument at fault (ScalePlanError.param); the CLI shows its flag. The flag is
# --name-with-dashes unless listed here.
FLAGS: dict[str, str] = {"zero": "--zero", "method": "--method", "n_layers": "--layers", "n_heads": "--heads",
                         "n_kv_heads": "--kv-heads", "n_experts": "--experts", "n_params": "--params",
                         "methods": "--method", "delta": "--huber-delta",
                         "hf_config": "--config"}  # fit(methods=..., delta=...)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: bad input gives one line on stderr and exit 2, never a traceback.

    Exit codes: 0 success, 2 bad input or usage, 1 interrupted or an internal error (one line naming it; set
    SCALEPLAN_DEBUG=1 for the traceback)."""
    import os
    import warnings

    if not os.environ.get("SCALEPLAN_DEBUG"):
        warnings.filterwarnings("ignore", category=RuntimeWarning)  # overflow in trial steps; results are checked
    usage_error = _usage_error_class()
    _plain_option_coercion()
    try:
        rc = app(args=argv, prog_name="scaleplan", standalone_mode=False)
    except ScalePlanError as e:
        print_error(e.for_cli(FLAGS))
        sys.exit(2)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code or 0)
    except (typer.Abort, KeyboardInterrupt):
        print_error("interrupted")
        sys.exit(1)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `scaleplan`: the help, as click < 8.2 printed it
            sys.stdout.write(e.ctx.get_help() + "\n")
            sys.exit(0)
        print_error(_usage_message(e))
        sys.exit(2 if getattr(e, "exit_code", 2) in (None, 0, 1, 2) else e.exit_code)
    except OSError as e:  # unreadable / unwritable paths that got past the up-front checks
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print_error(f"{where}{e.strerror or e}; check the path and its permissions")
        sys.exit(2)
    except Exception as e:
        if os.environ.get("SCALEPLAN_DEBUG"):
            raise
        print_error(f"internal error ({type(e).__name__}: {e}); please report it with the command line "
                    "(set SCALEPLAN_DEBUG=1 for the traceback)")
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
