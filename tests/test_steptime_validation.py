"""Step-time model against published training throughput (docs/planning.md §5.4, validation table).

tests/fixtures/published_steptime.csv holds 42 published runs with their layouts, copied from the sources named in
its ``source`` column (NVIDIA dgxc-benchmarking, NeMo and Megatron-Bridge performance summaries, MosaicML
llm-foundry, the Megatron-LM README, Narayanan et al. 2021 Table 1, the LLaMA paper). Each row is predicted with
the model's defaults and the row's own layout: no per-row constant. ``python benchmarks/validate_steptime.py``
prints the table the README and docs show.

The published metric is tokens/s per GPU, or TFLOP/s per GPU in the source's own FLOP count:
``tflops_per_gpu_eq3`` (Narayanan et al. Eq. 3, with recompute) or ``tflops_per_gpu_72lh2`` (72·L·h² + 12·L·h·s +
6·h·V per token, the full-attention count of Megatron-LM's README).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from scaling_planner.hardware import get_gpu
from scaling_planner.model import ModelShape
from scaling_planner.planner.steptime import step_time

FIXTURE = Path(__file__).parent / "fixtures" / "published_steptime.csv"


def load_rows() -> list[dict]:
    with FIXTURE.open(newline="") as f:
        return list(csv.DictReader(f))


def row_shape(r: dict) -> ModelShape:
    i = lambda k: int(r[k])  # noqa: E731
    return ModelShape(name=r["run"], vocab=i("vocab"), d_model=i("d_model"), n_layers=i("n_layers"),
                      n_heads=i("n_heads"), n_kv_heads=i("n_kv_heads"), ffn=i("ffn"), gated_mlp=bool(i("gated_mlp")),
                      norm=r["norm"], tied_embeddings=bool(i("tied")), n_experts=i("experts"),
                      top_k=i("top_k"), bias=r["bias"], learned_pos=i("learned_pos"))


def predict(r: dict) -> tuple[float, object]:
    """(the model's figure in the row's metric, the StepTime) for one fixture row."""
    s = row_shape(r)
    i = lambda k: int(r[k])  # noqa: E731
    gpus, tp, pp, cp = i("gpus"), i("tp"), i("pp"), i("cp")
    dp = gpus // (tp * pp * cp)
    st = step_time(s, get_gpu(r["gpu"]), tp=tp, pp=pp, dp=dp, cp=cp, ep=i("ep"), interleave=i("vp"),
                   micro_batch=i("micro_batch"), grad_accum=i("global_batch") // (dp * i("micro_batch")),
                   seq_len=i("seq_len"), zero_stage=i("zero"), recompute=r["recompute"], framework=r["framework"],
                   precision=r["precision"], sp=tp > 1, attention=r["attention"],
                   tp_overlap=None if r["tp_overlap"] == "" else bool(int(r["tp_overlap"])))
    per_gpu = st.tokens_per_s / gpus
    L, h, sq, V = s.n_layers, s.d_model, i("seq_len"), s.vocab
    if r["metric"] == "tokens_per_s_per_gpu":
        return per_gpu, st
    if r["metric"] == "tflops_per_gpu_eq3":  # Narayanan et al. Eq. 3 per token (with recompute)
        return per_gpu * 96 * L * h ** 2 * (1 + sq / (6 * h) + V / (16 * L * h)) / 1e12, st
    if r["metric"] == "tflops_per_gpu_72lh2":
        return per_gpu * (72 * L * h ** 2 + 12 * L * h * sq + 6 * h * V) / 1e12, st
    raise ValueError(r["metric"])


def errors() -> list[tuple[dict, float]]:
    return [(r, predict(r)[0] / float(r["published"]) - 1) for r in load_rows()]


ROWS = load_rows()


@pytest.mark.parametrize("row", ROWS, ids=[r["run"] for r in ROWS])
def test_each_published_run_within_40_percent(row):
    # per-row tolerance: the worst rows are Megatron-LM's weak-scaling 1.7B (+37%: vocabulary 131k on h 2048, micro-
    # batch not published) and 32B (-31%: an fp32 gradient reduce over one NIC that the model cannot hide behind the
    # last micro-batch), docs/planning.md §5.4
    err = predict(row)[0] / float(row["published"]) - 1
    assert abs(err) < 0.40, f"{row['run']}: {err:+.1%}"


def test_median_error_of_the_table():
    errs = [e for _, e in errors()]
    assert statistics.median(abs(e) for e in errs) < 0.09  # 6.7 % at the time of writing
    assert abs(statistics.median(errs)) < 0.03  # SUSTAINED is calibrated so the median signed error is ~0


def test_every_source_is_within_20_percent_median():
    by: dict[str, list[float]] = {}
    for r, e in errors():
        by.setdefault(r["source"], []).append(e)
    for src, es in by.items():
        assert abs(statistics.median(es)) < 0.20, src


def test_fixture_covers_what_the_issue_asks():
    rows = load_rows()
    assert len(rows) >= 40
    assert {r["gpu"] for r in rows} >= {"h100", "a100-80", "a100-40"}
    assert any(r["precision"] == "fp8" for r in rows) and any(int(r["experts"]) for r in rows)
    assert any(int(r["cp"]) > 1 for r in rows) and any(int(r["vp"]) > 1 for r in rows)
