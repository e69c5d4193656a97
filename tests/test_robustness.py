"""Robustness: the installed CLI over many bad inputs (files, cells, flags, law files, configs, report paths).

Every case runs ``scaleplan`` in a subprocess, as a user would, and must end with exit code 2, exactly one line on
stderr naming the problem (``match``), no traceback, and nothing on stdout. The cases run concurrently in one
session fixture (each is its own subprocess) so the suite stays fast; each case is still its own test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

GOOD_ROWS = "N,D,loss\n" + "".join(
    f"{n:.6g},{d:.6g},{1.8 + 480 / n ** 0.34 + 2085 / d ** 0.37:.5f}\n"
    for n in (1e7, 3e7, 1e8, 3e8) for d in (2e8, 6e8, 2e9, 6e9))
CHIN = {"E": 1.8, "A": 480.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}


def _law(**over):
    d = {"name": "bad", "form": "chinchilla", "params": dict(CHIN)}
    params = over.pop("params", {})
    d["params"].update(params)
    d.update(over)
    return json.dumps(d)


# name -> file content (str, bytes, or None for a directory)
FILES: dict[str, str | bytes | None] = {
    "good.csv": GOOD_ROWS,
    "existing.json": "{}",
    "existing.html": "<html></html>",
    "empty.csv": "",
    "header_only.csv": "N,D,loss\n",
    "no_loss.csv": "N,D\n1e8,2e9\n3e8,6e9\n",
    "only_loss.csv": "loss\n3.1\n2.9\n",
    "text_loss.csv": "N,D,loss\n1e8,2e9,abc\n3e8,6e9,2.9\n",
    "neg_loss.csv": "N,D,loss\n1e8,2e9,-3.1\n3e8,6e9,2.9\n",
    "zero_n.csv": "N,D,loss\n0,2e9,3.1\n3e8,6e9,2.9\n",
    "neg_d.csv": "N,D,loss\n1e8,-2e9,3.1\n3e8,6e9,2.9\n",
    "nan_cell.csv": "N,D,loss\n1e8,2e9,nan\n3e8,6e9,2.9\n",
    "inf_cell.csv": "N,D,loss\n1e8,inf,3.1\n3e8,6e9,2.9\n",
    "nan.jsonl": '{"N": 1e8, "D": 2e9, "loss": NaN}\n{"N": 3e8, "D": 6e9, "loss": 2.9}\n',
    "comma_decimal.csv": 'N,D,loss\n1e8,2e9,"3,4521"\n3e8,6e9,2.9\n',
    "comma_sci.csv": 'N,D,loss\n"1,5e8",2e9,3.4\n3e8,6e9,2.9\n',
    "binary.csv": b"\xff\xfe\x00\x01garbage\x00\x9c",
    "garbage.parquet": b"this is not parquet at all",
    "adir": None,
    "runs.xyz": "N,D,loss\n",
    "broken.jsonl": '{"N": 1e8, "D": 2e9, "loss": 3.1}\n{"N": 3e8,\n',
    "object.json": '{"hello": "world"}',
    "numbers.json": "[1, 2, 3]",
    "broken.json": "[{",
    "multi_n.csv": "model,N,D,loss\n" + "".join(f"m{i // 2},{n:g},{d:g},{3.0 + i / 10}\n" for i, (n, d) in enumerate(
        [(1e8, 1e9), (2e8, 1e9), (1e8, 2e9), (2e8, 2e9)])),
    "ppl.csv": "N,D,loss\n" + "".join(f"{n:g},{d:g},{20 + i:.1f}\n" for i, (n, d) in enumerate(
        [(1e8, 2e9), (3e8, 6e9), (1e9, 2e10), (3e9, 6e10)])),
    "log10_flops.csv": "N,C,loss\n" + "".join(f"{n:g},{c:.2f},{l}\n" for n, c, l in
                                            [(1e8, 19.1, 3.2), (3e8, 20.0, 3.0), (1e9, 21.2, 2.8)]),
    "dup_loss.csv": "N,D,loss,loss\n1e8,2e9,3.1,9.9\n3e8,6e9,2.9,9.9\n",
    # law files
    "law_notjson.json": "{not json",
    "law_list.json": "[1, 2]",
    "law_empty.json": "",
    "law_noparams.json": json.dumps({"name": "x", "form": "chinchilla"}),
    "law_form.json": _law(form="quadratic"),
    "law_alpha0.json": _law(params={"alpha": 0.0}),
    "law_betaneg.json": _law(params={"beta": -0.3}),
    "law_Eneg.json": _law(params={"E": -1.0}),
    "law_strparam.json": _law(params={"A": "big"}),
    "law_missing.json": json.dumps({"name": "x", "form": "chinchilla", "params": {"E": 1.0}}),
    "law_cunit.json": _law(C_unit="exaflops"),
    "law_samples.json": _law(samples={"alpha": [0.3, "x"]}),
    "law_power.json": json.dumps({"name": "x", "form": "power", "params": {"X_c": 1e13, "alpha": 0.07}}),
    "law_alloc.json": json.dumps({"name": "x", "form": "allocation", "params": {"a": 0.5, "b": 0.5}}),
    "law_kaplan0.json": json.dumps({"name": "x", "form": "kaplan_joint",
                                    "params": {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.0, "alpha_D": 0.1}}),
    # model configs
    "cfg_notjson.json": "{",
    "cfg_type.json": json.dumps({"model_type": "perceiver", "hidden_size": 64}),
    "cfg_missing.json": json.dumps({"model_type": "llama", "hidden_size": 4096}),
    "cfg_neg.json": json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": -2,
                                "num_attention_heads": 32, "intermediate_size": 11008, "vocab_size": 32000}),
    "blank_note.csv": "model,N,D,loss,note\nm,1e8,2e9,3.1,x\nm,1e8,2e9,3.0,\nq,1e9,2e10,2.7,x\nm,1e8,4e9,2.9,x\n"
                      "m,1e8,4e9,2.8,\nq,1e9,2e10,2.6,\nq,1e9,4e10,2.5,x\n",
    "law_huge.json": _law(params={"A": 1e308}),
    "cfg_bool.json": json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": True,
                                 "num_attention_heads": 32, "intermediate_size": 11008, "vocab_size": 32000}),
    # price files
    "prices_bad.json": "{",
    "prices_neg.json": json.dumps({"a100-80": -2}),
    "prices_str.json": json.dumps({"a100-80": "cheap"}),
    # conditions (--where, --group-by)
    "conditions.csv": "dataset," + GOOD_ROWS.replace("\n", "\nc4,", GOOD_ROWS.count("\n") - 1)
                      + "".join("rpj," + r + "\n" for r in GOOD_ROWS.splitlines()[1:]),
    "conditions_small.csv": "dataset,N,D,loss\nc4,1e8,2e9,3.1\nc4,3e8,6e9,2.9\nrpj,1e8,2e9,3.3\nrpj,3e8,6e9,3.0\n",
    "g.dataset-rpj.json": "{}",
}

# (id, args, what stderr must contain). "{d}" in an argument is the fixture folder.
CASES: list[tuple[str, list[str], str]] = [
    # ---- usage errors (the CLI library's own errors, whatever typer/click is installed)
    ("no-such-command", ["foo"], "No such command"),
    ("unknown-root-option", ["--bogus"], "No such option"),
    ("gpus-extra-arg", ["gpus", "extra"], "unexpected extra argument"),
    ("fit-missing-path", ["fit"], "Missing argument"),
    ("laws-show-missing-name", ["laws", "show"], "Missing argument"),
    ("budget-gpus-not-int", ["budget", "--gpus", "abc"], "--gpus"),
    ("budget-unknown-option", ["budget", "--flops", "1e23", "--bogus"], "--bogus"),
    ("budget-seq-len-not-int", ["budget", "--flops", "1e23", "--seq-len", "4k"], "--seq-len"),
    ("memory-tp-not-int", ["memory", "--model", "llama-3-8b", "--tp", "two"], "--tp"),
    ("fit-bootstrap-not-int", ["fit", "{d}/good.csv", "--bootstrap", "many"], "--bootstrap"),
    ("emit-missing-path", ["budget", "--flops", "1e23", "--emit", "deepspeed"], "--emit"),
    # ---- run-log files
    ("fit-no-file", ["fit", "{d}/missing.csv"], "no such file"),
    ("fit-markup-path", ["fit", "{d}/x[/b]y.csv"], "x[/b]y.csv"),
    ("fit-bold-path", ["fit", "{d}/[bold]x.csv"], "[bold]x.csv"),
    ("fit-directory", ["fit", "{d}/adir"], "is a directory"),
    ("fit-empty", ["fit", "{d}/empty.csv"], "empty.csv"),
    ("fit-header-only", ["fit", "{d}/header_only.csv"], "no rows"),
    ("fit-no-loss", ["fit", "{d}/no_loss.csv"], "no loss column"),
    ("fit-only-loss", ["fit", "{d}/only_loss.csv"], "need two of N"),
    ("fit-text-loss", ["fit", "{d}/text_loss.csv"], "'abc' is not a number"),
    ("fit-neg-loss", ["fit", "{d}/neg_loss.csv"], "must be finite and > 0"),
    ("fit-zero-n", ["fit", "{d}/zero_n.csv"], "must be finite and > 0"),
    ("fit-neg-d", ["fit", "{d}/neg_d.csv"], "must be finite and > 0"),
    ("fit-nan-cell", ["fit", "{d}/nan_cell.csv"], "row 1"),
    ("fit-inf-cell", ["fit", "{d}/inf_cell.csv"], "row 1"),
    ("fit-nan-jsonl", ["fit", "{d}/nan.jsonl"], "row 1"),
    ("fit-comma-decimal", ["fit", "{d}/comma_decimal.csv"], "3,4521"),
    ("fit-comma-sci", ["fit", "{d}/comma_sci.csv"], "1,5e8"),
    ("fit-binary", ["fit", "{d}/binary.csv"], "binary.csv"),
    ("fit-garbage-parquet", ["fit", "{d}/garbage.parquet"], "garbage.parquet"),
    ("fit-unknown-ext", ["fit", "{d}/runs.xyz"], "unknown file type"),
    ("fit-broken-jsonl", ["fit", "{d}/broken.jsonl"], "line 2"),
    ("fit-object-json", ["fit", "{d}/object.json"], "JSON array of records"),
    ("fit-numbers-json", ["fit", "{d}/numbers.json"], "JSON array of records"),
    ("fit-broken-json", ["fit", "{d}/broken.json"], "not valid JSON"),
    ("fit-run-id-several-n", ["fit", "{d}/multi_n.csv"], "--col run="),
    ("fit-perplexity", ["fit", "{d}/ppl.csv"], "--loss-unit"),
    ("fit-log10-flops", ["fit", "{d}/log10_flops.csv"], "--log10"),
    ("fit-duplicate-loss-columns", ["fit", "{d}/dup_loss.csv"], "loss"),
    # ---- fit flags
    ("fit-bad-method", ["fit", "{d}/good.csv", "--method", "approach4"], "unknown method"),
    ("fit-neg-bootstrap", ["fit", "{d}/good.csv", "--bootstrap", "-1"], "--bootstrap"),
    ("fit-bad-loss", ["fit", "{d}/good.csv", "--loss", "l7"], "--loss"),
    ("fit-zero-huber", ["fit", "{d}/good.csv", "--huber-delta", "0"], "--huber-delta"),
    ("fit-bad-flops-unit", ["fit", "{d}/good.csv", "--flops-unit", "exaflops"], "compute unit"),
    ("fit-bad-param-count", ["fit", "{d}/good.csv", "--param-count", "some"], "--param-count"),
    ("fit-col-no-equals", ["fit", "{d}/good.csv", "--col", "loss"], "ROLE=COLUMN"),
    ("fit-col-missing-column", ["fit", "{d}/good.csv", "--col", "loss=val"], "no column 'val'"),
    ("fit-col-bad-role", ["fit", "{d}/good.csv", "--col", "lr=loss"], "unknown column role"),
    ("fit-col-markup", ["fit", "{d}/good.csv", "--col", "loss=val_loss[/nats]"], "val_loss[/nats]"),
    ("fit-neg-at-flops", ["fit", "{d}/good.csv", "--at-flops", "-1"], "--at-flops"),
    ("fit-text-at-flops", ["fit", "{d}/good.csv", "--at-flops", "soon"], "--at-flops"),
    ("fit-huge-holdout", ["fit", "{d}/good.csv", "--holdout", "1000"], "--holdout"),
    ("fit-neg-drop-top-loss", ["fit", "{d}/good.csv", "--drop-top-loss", "-3"], "--drop-top-loss"),
    ("fit-huge-drop-top-loss", ["fit", "{d}/good.csv", "--drop-top-loss", "10000"], "--drop-top-loss"),
    ("fit-bad-loss-unit", ["fit", "{d}/good.csv", "--loss-unit", "furlongs"], "--loss-unit"),
    ("fit-log10-unknown-col", ["fit", "{d}/good.csv", "--log10", "flops"], "flops"),
    ("fit-save-no-dir", ["fit", "{d}/good.csv", "--save", "{d}/nodir/law.json"], "does not exist"),
    ("fit-save-exists", ["fit", "{d}/good.csv", "--save", "{d}/existing.json"], "--force"),
    ("fit-save-directory", ["fit", "{d}/good.csv", "--save", "{d}/adir"], "is a directory"),
    ("fit-report-no-dir", ["fit", "{d}/good.csv", "--report", "{d}/nodir/r.html"], "does not exist"),
    ("fit-report-exists", ["fit", "{d}/good.csv", "--report", "{d}/existing.html"], "--force"),
    ("fit-report-bad-ext", ["fit", "{d}/good.csv", "--report", "{d}/r.pdf"], ".html"),
    # ---- budget numbers and flags
    ("budget-nothing", ["budget"], "give a budget"),
    ("budget-flops-text", ["budget", "--flops", "lots"], "--flops"),
    ("budget-flops-neg", ["budget", "--flops", "-1e23"], "--flops"),
    ("budget-flops-zero", ["budget", "--flops", "0"], "--flops"),
    ("budget-flops-inf", ["budget", "--flops", "inf"], "--flops"),
    ("budget-flops-nan", ["budget", "--flops", "nan"], "--flops"),
    ("budget-flops-decimal-comma", ["budget", "--flops", "1,5e23"], "1,5e23"),
    ("budget-flops-bad-grouping", ["budget", "--flops", "1,00"], "1,00"),
    ("budget-flops-tiny", ["budget", "--flops", "1e10"], "too small"),
    ("budget-flops-absurd", ["budget", "--flops", "1e40"], "FLOPs"),
    ("budget-bad-gpu", ["budget", "--flops", "1e23", "--gpu", "a1000"], "unknown GPU"),
    ("budget-bad-law", ["budget", "--flops", "1e23", "--law", "epoch2042"], "Did you mean"),
    ("budget-law-alpha0", ["budget", "--flops", "1e23", "--law", "{d}/law_alpha0.json"], "params.alpha must be > 0"),
    ("budget-law-kaplan0", ["budget", "--flops", "1e23", "--law", "{d}/law_kaplan0.json"], "params.alpha_N"),
    ("budget-bad-compare", ["budget", "--flops", "1e23", "--compare", "nope"], "unknown law"),
    ("budget-mfu-2", ["budget", "--flops", "1e23", "--mfu", "2"], "--mfu"),
    ("budget-mfu-0", ["budget", "--flops", "1e23", "--mfu", "0"], "--mfu"),
    ("budget-goodput-0", ["budget", "--flops", "1e23", "--goodput", "0"], "--goodput"),
    ("budget-goodput-1.5", ["budget", "--flops", "1e23", "--goodput", "1.5"], "--goodput"),
    ("budget-price-neg", ["budget", "--flops", "1e23", "--price", "-2"], "--price"),
    ("budget-gpus-per-node-0", ["budget", "--flops", "1e23", "--gpus-per-node", "0"], "--gpus-per-node"),
    ("budget-max-gpus-0", ["budget", "--flops", "1e23", "--max-gpus", "0"], "--max-gpus"),
    ("budget-deadline-0", ["budget", "--flops", "1e23", "--deadline-days", "0"], "--deadline-days"),
    ("budget-deadline-neg", ["budget", "--flops", "1e23", "--deadline-days", "-3"], "--deadline-days"),
    ("budget-deadline-tiny", ["budget", "--flops", "1e23", "--deadline-days", "0.01"], "longer deadline"),
    ("budget-gpus-0", ["budget", "--flops", "1e23", "--gpus", "0"], "--gpus"),
    ("budget-gpus-without-days", ["budget", "--gpus", "8"], "--days"),
    ("budget-days-zero", ["budget", "--gpus", "8", "--days", "0"], "--days"),
    ("budget-seq-len-0", ["budget", "--flops", "1e23", "--seq-len", "0"], "--seq-len"),
    ("budget-vocab-0", ["budget", "--flops", "1e23", "--vocab", "0"], "--vocab"),
    ("budget-global-batch-0", ["budget", "--flops", "1e23", "--global-batch", "0"], "--global-batch"),
    ("budget-target-below-E", ["budget", "--target-loss", "0.5"], "irreducible"),
    ("budget-target-and-flops", ["budget", "--target-loss", "2.1", "--flops", "1e23"], "not both"),
    ("budget-nd-disagree", ["budget", "--flops", "1e23", "--params", "1e9", "--tokens", "1e9"], "disagrees"),
    ("budget-inference-neg", ["budget", "--flops", "1e23", "--inference-tokens", "-1"], "--inference-tokens"),
    ("budget-unique-text", ["budget", "--flops", "1e23", "--unique-tokens", "plenty"], "--unique-tokens"),
    ("budget-inference-allocation-law", ["budget", "--flops", "1e23", "--law", "deepseek2024",
                                         "--inference-tokens", "1e12"], "parametric law"),
    ("budget-emit-kind", ["budget", "--flops", "1e23", "--emit", "horovod", "{d}/x.json"], "--emit"),
    ("budget-emit-no-dir", ["budget", "--flops", "1e23", "--emit", "deepspeed", "{d}/nodir/ds.json"],
     "does not exist"),
    ("budget-emit-exists", ["budget", "--flops", "1e23", "--emit", "deepspeed", "{d}/existing.json"], "--force"),
    ("budget-report-no-dir", ["budget", "--flops", "1e23", "--report", "{d}/nodir/r.md"], "does not exist"),
    ("budget-prices-missing", ["budget", "--flops", "1e23", "--prices", "{d}/nope.json"], "nope.json"),
    ("budget-prices-bad", ["budget", "--flops", "1e23", "--prices", "{d}/prices_bad.json"], "prices_bad.json"),
    ("budget-prices-neg", ["budget", "--flops", "1e23", "--prices", "{d}/prices_neg.json"], ">= 0"),
    ("budget-prices-str", ["budget", "--flops", "1e23", "--prices", "{d}/prices_str.json"], "must be a number"),
    # ---- law files (laws show and budget --law)
    ("law-not-json", ["laws", "show", "{d}/law_notjson.json"], "not valid JSON"),
    ("law-list", ["laws", "show", "{d}/law_list.json"], "one JSON object"),
    ("law-empty", ["laws", "show", "{d}/law_empty.json"], "not valid JSON"),
    ("law-no-params", ["laws", "show", "{d}/law_noparams.json"], "missing field 'params'"),
    ("law-bad-form", ["laws", "show", "{d}/law_form.json"], "unknown form"),
    ("law-alpha-zero", ["laws", "show", "{d}/law_alpha0.json"], "params.alpha must be > 0"),
    ("law-beta-negative", ["laws", "show", "{d}/law_betaneg.json"], "params.beta must be > 0"),
    ("law-E-negative", ["laws", "show", "{d}/law_Eneg.json"], "params.E must be >= 0"),
    ("law-string-param", ["laws", "show", "{d}/law_strparam.json"], "params.A must be a number"),
    ("law-missing-params", ["laws", "show", "{d}/law_missing.json"], "needs params.A"),
    ("law-bad-c-unit", ["laws", "show", "{d}/law_cunit.json"], "C_unit"),
    ("law-bad-samples", ["laws", "show", "{d}/law_samples.json"], "samples.alpha"),
    ("law-power-no-variable", ["laws", "show", "{d}/law_power.json"], "variable"),
    ("law-alloc-no-k", ["laws", "show", "{d}/law_alloc.json"], "k_N"),
    ("law-missing-file", ["laws", "show", "{d}/nope.json"], "no such law file"),
    ("law-directory", ["laws", "show", "{d}/adir"], "adir"),
    ("laws-show-tokens-only", ["laws", "show", "epoch2024", "--tokens", "1e12"], "--params"),
    ("laws-show-flops-and-params", ["laws", "show", "epoch2024", "--flops", "1e23", "--params", "1e9"],
     "either --flops"),
    # ---- memory: models, configs, flags
    ("memory-no-model", ["memory"], "name a model"),
    ("memory-bad-model", ["memory", "--model", "llama-9"], "unknown"),
    ("memory-config-dir", ["memory", "--config", "{d}/adir"], "is a directory"),
    ("memory-config-missing", ["memory", "--config", "{d}/nope.json"], "nope.json"),
    ("memory-config-notjson", ["memory", "--config", "{d}/cfg_notjson.json"], "not valid JSON"),
    ("memory-config-type", ["memory", "--config", "{d}/cfg_type.json"], "perceiver"),
    ("memory-config-missing-field", ["memory", "--config", "{d}/cfg_missing.json"], "missing field"),
    ("memory-config-negative", ["memory", "--config", "{d}/cfg_neg.json"], "positive integer"),
    ("memory-params-text", ["memory", "--params", "big"], "--params"),
    ("memory-params-neg", ["memory", "--params", "-7e9"], "--params"),
    ("memory-layers-0", ["memory", "--layers", "0", "--d-model", "512", "--heads", "8"], "positive integer"),
    ("memory-bad-gpu", ["memory", "--model", "llama-3-8b", "--gpu", "rtx9090"], "unknown GPU"),
    ("memory-bad-precision", ["memory", "--model", "llama-3-8b", "--precision", "fp4"], "--precision"),
    ("memory-fp8-hf", ["memory", "--model", "llama-3-8b", "--precision", "fp8", "--framework", "hf"],
     "--precision fp8 (Transformer Engine FP8 GEMMs) needs --framework megatron"),
    ("memory-bad-optimizer", ["memory", "--model", "llama-3-8b", "--optimizer", "adamax"], "--optimizer"),
    ("memory-bad-zero", ["memory", "--model", "llama-3-8b", "--zero", "5"], "--zero"),
    ("memory-bad-zero-name", ["memory", "--model", "llama-3-8b", "--zero", "half_shard"], "half_shard"),
    ("memory-tp-heads", ["memory", "--model", "llama-3-8b", "--tp", "3", "--gpus", "3"], "--tp"),
    ("memory-pp-layers", ["memory", "--model", "llama-3-8b", "--pp", "7", "--gpus", "7"], "--pp"),
    ("memory-bad-offload", ["memory", "--model", "llama-3-8b", "--offload", "disk"], "--offload"),
    ("memory-bad-recompute", ["memory", "--model", "llama-3-8b", "--recompute", "some"], "--recompute"),
    ("memory-bad-attention", ["memory", "--model", "llama-3-8b", "--attention", "linear"], "--attention"),
    ("memory-bad-method", ["memory", "--model", "llama-3-8b", "--method", "dora"], "--method"),
    ("memory-bad-lora-targets", ["memory", "--model", "llama-3-8b", "--method", "lora", "--lora-targets",
                                 "qkv"], "--lora-targets"),
    ("memory-bad-lora-dtype", ["memory", "--model", "llama-3-8b", "--lora-dtype", "fp8"], "--lora-dtype"),
    ("memory-bad-peak-kind", ["memory", "--model", "llama-3-8b", "--peak-kind", "max"], "--peak-kind"),
    ("memory-seq-len-0", ["memory", "--model", "llama-3-8b", "--seq-len", "0"], "--seq-len"),
    ("memory-micro-batch-0", ["memory", "--model", "llama-3-8b", "--micro-batch", "0"], "--micro-batch"),
    ("memory-dropout-2", ["memory", "--model", "llama-3-8b", "--dropout", "2"], "--dropout"),
    ("memory-fragmentation-neg", ["memory", "--model", "llama-3-8b", "--fragmentation", "-1"], "--fragmentation"),
    ("memory-context-neg", ["memory", "--model", "llama-3-8b", "--cuda-context-gib", "-1"], "--cuda-context-gib"),
    ("memory-gpus-layout", ["memory", "--model", "llama-3-8b", "--gpus", "3", "--tp", "2"], "--gpus"),
    ("memory-bad-framework", ["memory", "--model", "llama-3-8b", "--framework", "jax"], "--framework"),
    ("fit-merged-curves-blank-cells", ["fit", "{d}/blank_note.csv"], "--col run=model+note"),
    ("law-huge-coefficient", ["laws", "show", "{d}/law_huge.json", "--flops", "1e23"], "no finite"),
    ("budget-law-huge-coefficient", ["budget", "--flops", "1e23", "--law", "{d}/law_huge.json"], "no finite"),
    ("memory-params-beyond-shapes", ["memory", "--params", "1e15"], "outside the Llama-like shapes"),
    ("memory-params-below-shapes", ["memory", "--params", "1e5"], "outside the Llama-like shapes"),
    ("budget-below-smallest-shape", ["budget", "--flops", "1e16"], "too small"),
    ("memory-config-bool-layers", ["memory", "--config", "{d}/cfg_bool.json"], "got True"),
    ("memory-context-0", ["memory", "--model", "llama-3-8b", "--inference", "--context", "0"], "--context"),
    ("memory-vocab-0", ["memory", "--params", "7B", "--vocab", "0"], "vocab"),
    ("budget-emit-report-same-path", ["budget", "--flops", "1e23", "--emit", "deepspeed", "{d}/same.md",
                                      "--report", "{d}/same.md"], "both name"),
    ("fit-save-report-same-path", ["fit", "{d}/good.csv", "--save", "{d}/s.md", "--report", "{d}/s.md"],
     "both name"),
    ("memory-report-no-dir", ["memory", "--model", "llama-3-8b", "--report", "{d}/nodir/m.html"], "does not exist"),
    # ---- conditions: --where, --group-by, --holdout-by
    ("fit-where-unknown-column", ["fit", "{d}/conditions.csv", "--where", "datset == 'c4'"],
     "--where \"datset == 'c4'\": no column 'datset' (did you mean 'dataset'?)"),
    ("fit-where-bad-syntax", ["fit", "{d}/conditions.csv", "--where", "dataset =="], "not a valid condition"),
    ("fit-where-assignment", ["fit", "{d}/conditions.csv", "--where", "dataset = 'c4'"], "compare with =="),
    ("fit-where-not-a-condition", ["fit", "{d}/conditions.csv", "--where", "N"], "is not a condition"),
    ("fit-where-no-rows", ["fit", "{d}/conditions.csv", "--where", "dataset == 'c5'"],
     "matches none of the 32 rows (dataset has 'c4', 'rpj')"),
    ("fit-where-type", ["fit", "{d}/conditions.csv", "--where", "dataset > 3"], "cannot evaluate it"),
    ("fit-where-markup", ["fit", "{d}/conditions.csv", "--where", "[bold]x == 1"], "[bold]x"),
    ("fit-group-by-unknown", ["fit", "{d}/conditions.csv", "--group-by", "datset"],
     "--group-by datset: no column 'datset'"),
    ("fit-group-by-empty", ["fit", "{d}/conditions.csv", "--group-by", ","], "--group-by is empty"),
    ("fit-group-by-values", ["fit", "{d}/good.csv", "--group-by", "loss"], "makes 16 groups of 16 rows"),
    ("fit-group-by-all-too-small", ["fit", "{d}/conditions_small.csv", "--group-by", "dataset"],
     "no group could be fitted: every one of the 2 groups: only 2 run(s)"),
    ("fit-group-by-where-no-rows", ["fit", "{d}/conditions.csv", "--group-by", "dataset", "--where", "N > 1e12"],
     "matches none"),
    ("fit-group-save-exists", ["fit", "{d}/conditions.csv", "--group-by", "dataset", "--save", "{d}/g.json"],
     "g.dataset-rpj.json: exists; pass --force"),
    ("fit-group-bad-holdout-by", ["fit", "{d}/conditions.csv", "--group-by", "dataset", "--holdout", "1",
                                  "--holdout-by", "flops"], "--holdout-by must be one of compute, size"),
    ("fit-holdout-by-bad", ["fit", "{d}/good.csv", "--holdout", "1", "--holdout-by", "largest"], "--holdout-by"),
    ("fit-holdout-by-size-too-many", ["fit", "{d}/good.csv", "--holdout", "3", "--holdout-by", "size"],
     "--holdout 3 by size: the data has only 4 model sizes"),
]


def _scaleplan_command() -> list[str]:
    exe = Path(sys.executable).parent / "scaleplan"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("scaleplan")
    return [found] if found else [sys.executable, "-m", "scaling_planner"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("robust")
    for name, content in FILES.items():
        p = d / name
        if content is None:
            p.mkdir()
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    cmd = _scaleplan_command()
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("SCALEPLAN_DEBUG", None)

    def run(case):
        cid, args, _ = case
        argv = [a.replace("{d}", str(d)) for a in args]
        r = subprocess.run([*cmd, *argv], capture_output=True, text=True, env=env, cwd=d, timeout=120)
        return cid, (r.returncode, r.stdout, r.stderr)

    with ThreadPoolExecutor(max_workers=4) as pool:
        out = dict(pool.map(run, CASES))
    out["_dir"] = d
    return out


def test_there_are_over_100_cases():
    assert len(CASES) >= 100
    assert len({c[0] for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("cid,args,match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(results, cid, args, match):
    code, out, err = results[cid]
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}; stderr: {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert match in lines[0], f"{match!r} not in {lines[0]!r}"
    assert "internal error" not in lines[0]
    assert out == "", f"stdout should be empty on error, got {out[:200]!r}"


def test_no_output_file_was_written_by_a_failed_command(results):
    d = results["_dir"]
    assert not (d / "nodir").exists()
    assert (d / "existing.json").read_text() == "{}"  # not overwritten without --force
    assert (d / "existing.html").read_text() == "<html></html>"
    assert not (d / "x.json").exists()
    assert not (d / "same.md").exists() and not (d / "s.md").exists()  # a clash is refused before any write
    assert not (d / "g.dataset-c4.json").exists()  # --group-by --save: every path checked before any is written
    assert (d / "g.dataset-rpj.json").read_text() == "{}"
