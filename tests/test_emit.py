"""Launch files written from a Plan (docs/planning.md §4.5): each file runs the plan's layout and batch, each stack is
refused the layouts it cannot run, and every Megatron-LM flag name exists in Megatron-LM."""

import json
import math
import shlex
from dataclasses import replace

import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.model import ModelShape
from scaling_planner.planner import plan_budget
from scaling_planner.render.emit import (
    batch_identity,
    check_emittable,
    deepspeed_config,
    emit_text,
    fsdp_accelerate_config,
    megatron_args,
    megatron_arguments,
    train_iters,
)

# Every flag the Megatron emitter can write, each checked (docs/planning.md §4.5) against
# megatron/training/arguments.py @ NVIDIA/Megatron-LM d98e8a6: a literal add_argument, or a field of a config
# dataclass that arguments.py turns into a flag with ArgumentGroupFactory (megatron/training/argument_utils.py).
MEGATRON_FLAGS = {
    "--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--sequence-parallel", "--num-experts",
    "--moe-router-topk", "--expert-model-parallel-size", "--micro-batch-size", "--global-batch-size", "--seq-length",
    "--num-layers", "--hidden-size", "--ffn-hidden-size", "--num-attention-heads", "--kv-channels",
    "--group-query-attention", "--num-query-groups", "--position-embedding-type", "--max-position-embeddings",
    "--swiglu", "--normalization", "--disable-bias-linear", "--add-qkv-bias", "--untie-embeddings-and-output-weights",
    "--fp16", "--bf16", "--fp8-format", "--fp8-recipe", "--recompute-granularity", "--recompute-method",
    "--recompute-num-layers", "--use-distributed-optimizer", "--use-megatron-fsdp", "--data-parallel-sharding-strategy",
    "--ckpt-format", "--overlap-grad-reduce", "--overlap-param-gather", "--train-iters", "--lr", "--min-lr",
    "--lr-decay-style", "--lr-decay-iters", "--lr-warmup-iters", "--weight-decay", "--clip-grad", "--adam-beta1",
    "--adam-beta2", "--tp-comm-overlap", "--moe-shared-expert-intermediate-size",  # TransformerConfig(ModelParallelConfig).tp_comm_overlap (arguments.py L2373)
}
# Choices of the flags with a fixed set of values (same file and commit; TransformerConfig / SchedulerConfig Literals).
MEGATRON_CHOICES = {
    "--normalization": {"LayerNorm", "RMSNorm"},
    "--position-embedding-type": {"learned_absolute", "rope", "yarn", "mrope", "relative", "none"},
    "--recompute-granularity": {"full", "selective"}, "--recompute-method": {"uniform", "block"},
    "--fp8-format": {"e4m3", "hybrid"}, "--fp8-recipe": {"tensorwise", "delayed", "mxfp8", "blockwise", "custom"},
    "--data-parallel-sharding-strategy": {"no_shard", "optim", "optim_grads", "optim_grads_params"},
    "--ckpt-format": {"torch", "torch_dist", "torch_dcp", "fsdp_dtensor"},
    "--lr-decay-style": {"constant", "linear", "cosine", "inverse-square-root", "WSD"},
}


@pytest.fixture(scope="module")
def mega():
    """A Megatron plan with every parallel axis: TP 2 (sequence parallel) x PP 2 x DP 4, ZeRO-1, full recompute."""
    return plan_budget(params=7e9, tokens=1e11, gpu="h100", tp=2, pp=2, dp=4, zero=1, recompute="full", sp=True,
                       micro_batch=1)


def _parse_megatron(text: str) -> dict:
    """The MEGATRON_ARGS array of an emitted file as {flag: value or None}, read the way bash splits it."""
    body = text.split("MEGATRON_ARGS=(", 1)[1].split("\n)", 1)[0]
    words = shlex.split(body)
    out, i = {}, 0
    while i < len(words):
        flag = words[i]
        assert flag.startswith("--") and flag not in out, flag
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            out[flag], i = words[i + 1], i + 2
        else:
            out[flag], i = None, i + 1
    return out


def _fake(plan, **layout):
    """``plan`` with some layout fields changed (for layouts the search would not pick)."""
    return replace(plan, layout=replace(plan.layout, **layout))


# ---- Megatron-LM ------------------------------------------------------------------------------------------------
def test_megatron_args_are_the_plan(mega):
    L, s = mega.layout, mega.shape
    a = _parse_megatron(megatron_args(mega))
    assert a["--tensor-model-parallel-size"] == "2" and a["--pipeline-model-parallel-size"] == "2"
    assert "--sequence-parallel" in a
    # Megatron derives accumulation = global / (micro x DP); the plan's batch is exactly that product
    assert int(a["--micro-batch-size"]) == L.micro_batch
    assert int(a["--global-batch-size"]) == mega.global_batch == L.micro_batch * L.grad_accum * L.dp
    assert int(a["--seq-length"]) == mega.seq_len == int(a["--max-position-embeddings"])
    assert (int(a["--num-layers"]), int(a["--hidden-size"]), int(a["--ffn-hidden-size"]),
            int(a["--num-attention-heads"])) == (s.n_layers, s.d_model, s.ffn, s.n_heads)
    assert s.n_kv_heads < s.n_heads and "--group-query-attention" in a
    assert int(a["--num-query-groups"]) == s.n_kv_heads
    assert "--swiglu" in a and a["--normalization"] == "RMSNorm" and "--untie-embeddings-and-output-weights" in a
    assert "--disable-bias-linear" in a and a["--position-embedding-type"] == "rope" and "--kv-channels" not in a
    assert "--bf16" in a and "--fp16" not in a
    assert (a["--recompute-granularity"], a["--recompute-method"], a["--recompute-num-layers"]) == ("full", "uniform",
                                                                                                    "1")
    assert "--use-distributed-optimizer" in a and "--use-megatron-fsdp" not in a  # ZeRO-1
    steps = math.ceil(mega.tokens / (mega.global_batch * mega.seq_len))
    assert int(a["--train-iters"]) == steps == int(a["--lr-decay-iters"]) == train_iters(mega)
    assert float(a["--lr"]) == pytest.approx(mega.learning_rate, rel=1e-5)
    assert float(a["--min-lr"]) == pytest.approx(0.1 * mega.learning_rate, rel=1e-5)  # LLaMA §2.2: 10% of peak


def test_megatron_comments_agree_with_the_file(mega):
    text = megatron_args(mega)
    L = mega.layout
    assert (f"micro-batch {L.micro_batch} x gradient accumulation {L.grad_accum} x DP {L.dp} = global batch "
            f"{mega.global_batch} sequences of {mega.seq_len} tokens; {train_iters(mega)} steps") in text
    assert f"TP 2 x PP 2 x DP 4 = {L.gpus} GPUs" in text
    assert f"scaleplan's megatron profile: {mega.memory.device / 2**30:.1f} of" in text
    assert "torchrun --nnodes 2 --nproc-per-node 8" in text  # 16 GPUs, 8 per node


def test_megatron_zero_recompute_and_precision_mapping(mega):
    a = _parse_megatron(megatron_args(_fake(mega, zero_stage=0, recompute="selective", sp=False)))
    assert a["--recompute-granularity"] == "selective"  # Megatron asserts no method with selective
    assert "--recompute-method" not in a and "--sequence-parallel" not in a and "--use-distributed-optimizer" not in a
    assert "--overlap-grad-reduce" in a and "--overlap-param-gather" not in a  # param gather needs a sharded optimizer
    for stage, strategy in ((2, "optim_grads"), (3, "optim_grads_params")):
        a = _parse_megatron(megatron_args(_fake(mega, zero_stage=stage, pp=1, dp=8, grad_accum=128)))
        assert a["--data-parallel-sharding-strategy"] == strategy and "--use-megatron-fsdp" in a
        assert a["--ckpt-format"] == "fsdp_dtensor"  # Megatron-FSDP asserts this format
    a = _parse_megatron(megatron_args(replace(mega, layout=replace(mega.layout, recompute="none"))))
    assert "--recompute-granularity" not in a
    v100 = plan_budget(params=1e9, tokens=2e10, gpu="v100-32", tp=1, pp=1)  # no bf16 on V100: fp16
    a = _parse_megatron(megatron_args(v100))
    assert "--fp16" in a and "--bf16" not in a


def test_megatron_shape_variants(mega):
    moe = ModelShape(vocab=32000, d_model=1024, n_layers=8, n_heads=16, n_kv_heads=16, ffn=2816, n_experts=8,
                     top_k=2, bias="qkv", tied_embeddings=True)
    a = _parse_megatron(megatron_args(replace(mega, shape=moe, layout=replace(mega.layout, ep=2))))
    assert (a["--num-experts"], a["--moe-router-topk"], a["--expert-model-parallel-size"]) == ("8", "2", "2")
    assert "--add-qkv-bias" in a and "--group-query-attention" not in a
    assert "--untie-embeddings-and-output-weights" not in a
    gpt = ModelShape(vocab=50257, d_model=768, n_layers=12, n_heads=12, head_dim=32, gated_mlp=False,
                     norm="layernorm", bias="all", learned_pos=1024, tied_embeddings=True)
    a = _parse_megatron(megatron_args(replace(mega, shape=gpt)))
    assert a["--normalization"] == "LayerNorm" and "--swiglu" not in a and "--disable-bias-linear" not in a
    assert (a["--position-embedding-type"], a["--max-position-embeddings"]) == ("learned_absolute", "1024")
    assert a["--kv-channels"] == "32"  # head_dim x heads != d_model
    assert "--fp8-format" not in _parse_megatron(megatron_args(mega))
    assert "--tp-comm-overlap" in _parse_megatron(megatron_args(mega))  # TP 2 with SP: overlapped as costed
    fp8 = replace(mega, layout=replace(mega.layout, precision="fp8"))
    a = _parse_megatron(megatron_args(fp8))  # Transformer-Engine FP8 GEMMs over bf16 (docs/planning.md §4.5)
    assert (a["--fp8-format"], a["--fp8-recipe"]) == ("hybrid", "delayed") and "--bf16" in a


@pytest.mark.parametrize("variant", ["plain", "selective", "zero2", "zero3", "moe", "gpt", "fp16"])
def test_megatron_flag_names_exist(mega, variant):
    p = mega
    if variant == "selective":
        p = _fake(mega, recompute="selective")
    elif variant in ("zero2", "zero3"):
        p = _fake(mega, zero_stage=int(variant[-1]), pp=1, dp=8, grad_accum=128)
    elif variant == "moe":
        p = replace(mega, shape=ModelShape(vocab=32000, d_model=1024, n_layers=8, n_heads=16, n_experts=8, top_k=2,
                                           bias="qkv"))
    elif variant == "gpt":
        p = replace(mega, shape=ModelShape(vocab=50257, d_model=768, n_layers=12, n_heads=12, head_dim=32,
                                           gated_mlp=False, norm="layernorm", bias="all", learned_pos=1024))
    elif variant == "fp16":
        p = replace(mega, gpu=replace(mega.gpu, bf16_tflops=None))
    args = megatron_arguments(p)
    assert {k for k, _ in args} <= MEGATRON_FLAGS
    for k, v in args:
        if k in MEGATRON_CHOICES:
            assert v in MEGATRON_CHOICES[k], (k, v)


# ---- DeepSpeed and FSDP -----------------------------------------------------------------------------------------
def test_deepspeed_config_is_the_plan():
    p = plan_budget(params=1e9, tokens=2e10, gpu="a100-80", framework="deepspeed", tp=1, pp=1, dp=8, zero=2)
    L = p.layout
    ds = json.loads(emit_text(p, "deepspeed"))
    # DeepSpeed asserts train_batch_size == micro x accumulation x data-parallel world size (runtime/config.py)
    assert ds["train_batch_size"] == p.global_batch == L.micro_batch * L.grad_accum * L.dp
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (L.micro_batch, L.grad_accum)
    assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    assert ds["optimizer"]["params"]["lr"] == p.learning_rate
    assert batch_identity(p) == (L.micro_batch, L.grad_accum, 8, p.global_batch)


def test_fsdp_config_is_the_plan():
    p = plan_budget(params=1e9, tokens=2e10, gpu="h100", framework="hf", tp=1, pp=1, dp=4, zero=3, recompute="full")
    L = p.layout
    y = fsdp_accelerate_config(p)
    kv = dict(line.strip().split(": ", 1) for line in y.splitlines() if ": " in line and not line.startswith("#"))
    assert kv["num_processes"] == "4" == str(L.dp) == str(L.gpus) and kv["num_machines"] == "1"
    assert kv["fsdp_sharding_strategy"] == "FULL_SHARD" and kv["fsdp_activation_checkpointing"] == "true"
    assert kv["mixed_precision"] == "bf16"
    b, m, d, B = batch_identity(p)
    # what the file runs (Trainer flags x processes) and what its comments say are the plan's global batch
    assert f"--per_device_train_batch_size {b} --gradient_accumulation_steps {m}" in y
    assert f"({b} x {m} x {kv['num_processes']} processes = {B} sequences per step)" in y and b * m * d == B
    assert f"global batch {B} sequences" in y and "scaleplan's hf profile" in y


# ---- refusals ---------------------------------------------------------------------------------------------------
def test_fsdp_refuses_the_issue_layout():
    """The issue's case: a Megatron TP 2 + SP layout got an FSDP file checked with the Megatron profile."""
    p = plan_budget(params=7e9, tokens=1e11, gpu="h100", tp=2, pp=1, dp=4, sp=True)
    with pytest.raises(ScalePlanError, match="cannot run tensor parallelism and the layout has TP 2") as e:
        fsdp_accelerate_config(p)
    assert e.value.for_cli().count("--tp 1") == 1 and "--emit megatron" in e.value.for_cli()
    with pytest.raises(ScalePlanError, match="cannot run tensor parallelism"):
        deepspeed_config(p)
    hf = replace(p, framework="hf")
    with pytest.raises(ScalePlanError, match="TP 2"):  # the layout, whatever the profile
        fsdp_accelerate_config(hf)


@pytest.mark.parametrize("kind,kw,match,flag", [
    ("fsdp", dict(pp=2), "pipeline parallelism and the layout has PP 2", "--pp 1"),
    ("deepspeed", dict(pp=4), "PP 4", "--pp 1"),
    ("fsdp", dict(ep=2), "no expert parallelism", "--emit megatron"),
    ("fsdp", dict(recompute="selective"), "selective", "--recompute full"),
    ("fsdp", dict(framework="megatron"), "hf profile", "--framework hf"),
    ("deepspeed", dict(framework="hf"), "deepspeed profile", "--framework deepspeed"),
    ("megatron", dict(framework="hf"), "costed for Megatron-LM", "--framework megatron"),
    ("horovod", dict(), "emit must be one of", "--emit must"),
])
def test_refusals_name_the_fix(kind, kw, match, flag):
    with pytest.raises(ScalePlanError, match=match) as e:
        check_emittable(kind, **kw)
    assert flag in e.value.for_cli()


def test_runnable_layouts_pass():
    check_emittable("megatron", framework="megatron", tp=8, pp=4, ep=2, recompute="selective")
    check_emittable("fsdp", framework="hf", tp=1, pp=1, ep=1, recompute="full")
    check_emittable("deepspeed", framework="deepspeed", tp=1, pp=1, recompute="selective")


def test_batch_that_does_not_add_up_is_refused(mega):
    with pytest.raises(ScalePlanError, match="does not add up"):
        megatron_args(_fake(mega, grad_accum=mega.layout.grad_accum + 1))


# ---- CLI --------------------------------------------------------------------------------------------------------
def test_cli_emit_megatron(cli, tmp_path):
    f = tmp_path / "args.sh"
    code, out, err = cli("budget", "--params", "7e9", "--tokens", "1e11", "--gpu", "h100", "--tp", "2", "--pp", "2",
                         "--dp", "4", "--json", "--emit", "megatron", f)
    assert code == 0, err
    d = json.loads(out)
    a = _parse_megatron(f.read_text())
    assert int(a["--global-batch-size"]) == d["global_batch"] == d["layout"]["micro_batch"] * \
        d["layout"]["grad_accum"] * d["layout"]["dp"]
    assert int(a["--micro-batch-size"]) == d["layout"]["micro_batch"] and a["--tensor-model-parallel-size"] == "2"


@pytest.mark.parametrize("args,match", [
    (["--tp", "2", "--framework", "hf"], "--tp 1"),  # pinned: refused before planning
    (["--pp", "2", "--framework", "hf"], "--pp 1"),
    ([], "--framework hf"),  # the issue's `--flops 1e24 --gpu t4 --emit fsdp` case: costed for megatron
])
def test_cli_emit_fsdp_refusals_write_nothing(cli, tmp_path, args, match):
    f = tmp_path / "fsdp.yaml"
    code, out, err = cli("budget", "--flops", "1e24", "--gpu", "t4", "--emit", "fsdp", f, *args)
    assert code == 2 and match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not f.exists()
