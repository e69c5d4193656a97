"""Mutations of the step-time model (scaling_planner/planner/steptime.py, kernels.py); see tests/mutations/__init__.py.

Each stubs one term through the module attribute ``step_time`` calls it by; the killing tests are in
tests/test_steptime.py (hand arithmetic and the published runs of docs/planning.md §5.4)."""

from __future__ import annotations

from dataclasses import replace

from . import Mutation

TESTS = ("tests/test_steptime.py", "tests/test_steptime_validation.py")


def _st():
    from scaling_planner.planner import steptime

    return steptime


def _zero(*a, **k):
    return 0.0


def _gemm_eff_one(mp):
    mp.setattr(_st(), "gemm_efficiency", lambda gpu, m, n, k, dtype="bf16": 1.0)


def _no_attention(mp):
    st = _st()
    mp.setattr(st, "attention_flops", _zero)
    mp.setattr(st, "eager_attention", lambda *a, **k: (0.0, 0.0, 0.0))


def _no_memory(mp):
    st = _st()
    mp.setattr(st, "memory_bytes", lambda *a, **k: (0.0, 0.0))
    mp.setattr(st, "optimizer_seconds", _zero)


def _fusion_ignored(mp):
    """Every framework gets Megatron's fused kernels (and its optimizer): the stack no longer decides the kernels."""
    from scaling_planner.planner import kernels

    meg = kernels.KERNELS["megatron"]
    mp.setattr(kernels, "KERNELS", {k: replace(meg, name=k) for k in kernels.KERNELS})


def _optimizer_same(mp):
    from scaling_planner.planner import kernels

    mp.setattr(kernels, "OPTIMIZER_TOUCHES", {"fused": 7, "foreach": 7})
    mp.setattr(_st(), "OPTIMIZER_TOUCHES", {"fused": 7, "foreach": 7})


def _no_wave(mp):
    mp.setattr(_st(), "wave_efficiency", lambda m, n, sms: 1.0)


def _no_overlap(mp):
    st = _st()
    orig = st.dp_exposed_seconds
    mp.setattr(st, "dp_exposed_seconds",
               lambda p, gpu, kern, **kw: orig(p, gpu, replace(kern, overlap_dp=False), **kw))


def _fp8_as_bf16(mp):
    st = _st()
    orig = st.gemm_seconds
    mp.setattr(st, "gemm_seconds", lambda gpu, m, n, k, dtype: orig(gpu, m, n, k, "bf16"))


def _single_node_bw(mp):
    mp.setattr(_st(), "collective_bw", lambda gpu, group, stride, gpn: gpu.intra_node_gb_s * 1e9 * 0.75)


def _tp_overlap_ignored(mp):
    mp.setattr(_st(), "tp_exposed", lambda comm, gemm, tp, overlap: comm)


def _buckets_ignored(mp):
    mp.setattr(_st(), "dp_bucket_params", lambda kern, dp, grad_bytes: float("inf"))


def _zero2_once(mp):
    """ZeRO-2 reduces once per step, as ZeRO-1 (DeepSpeed reduces partitioned gradients every micro-batch)."""
    st = _st()
    orig = st.dp_exposed_seconds
    mp.setattr(st, "dp_exposed_seconds", lambda p, gpu, kern, **kw: orig(
        p, gpu, kern, **{**kw, "zero_stage": 1 if kw["zero_stage"] == 2 else kw["zero_stage"]}))


MUTATIONS = [
    Mutation("steptime.latency_zero", "collectives have no latency (NCCL's base + per-step link latency dropped)",
             lambda mp: mp.setattr(_st(), "collective_latency", _zero), TESTS),
    Mutation("steptime.tp_overlap_ignored", "TP communication never overlapped with the GEMMs", _tp_overlap_ignored,
             TESTS),
    Mutation("steptime.buckets_ignored", "DP gradients in one collective whatever the framework's buckets",
             _buckets_ignored, TESTS),
    Mutation("steptime.zero2_reduce_once", "ZeRO-2 reduce-scatters once per step", _zero2_once, TESTS),
    Mutation("steptime.fp8_casts_free", "Transformer Engine's FP8 casts take no time",
             lambda mp: mp.setattr(_st(), "FP8_CAST_BYTES", 0.0), TESTS),
    Mutation("steptime.cp_comm_zero", "context-parallel ring exchange takes no time",
             lambda mp: mp.setattr(_st(), "cp_seconds", _zero), TESTS),
    Mutation("steptime.sustained_one", "GEMMs and attention at the microbenchmarks' throughput (SUSTAINED = 1)",
             lambda mp: mp.setattr(_st(), "SUSTAINED", 1.0), TESTS),

    Mutation("steptime.gemm_efficiency_one", "GEMMs at the full dense peak (efficiency = 1)", _gemm_eff_one, TESTS),
    Mutation("steptime.wave_quantisation", "no tile/wave quantisation", _no_wave, TESTS),
    Mutation("steptime.attention_dropped", "attention FLOPs (flash and eager) dropped", _no_attention, TESTS),
    Mutation("steptime.memory_bound_zero", "memory-bound kernels and optimizer step take no time", _no_memory, TESTS),
    Mutation("steptime.fusion_ignored", "framework fusion ignored: every stack gets fused kernels", _fusion_ignored,
             TESTS),
    Mutation("steptime.optimizer_impl_ignored", "foreach AdamW costs as much as fused", _optimizer_same, TESTS),
    Mutation("steptime.tp_comm_zero", "TP collectives take no time",
             lambda mp: mp.setattr(_st(), "tp_seconds", _zero), TESTS),
    Mutation("steptime.dp_comm_zero", "DP gradient reduce / ZeRO gathers take no time",
             lambda mp: mp.setattr(_st(), "dp_exposed_seconds", _zero), TESTS),
    Mutation("steptime.dp_overlap_ignored", "DP communication never overlapped", _no_overlap, TESTS),
    Mutation("steptime.ep_comm_zero", "expert all-to-all takes no time",
             lambda mp: mp.setattr(_st(), "ep_seconds", _zero), TESTS),
    Mutation("steptime.ring_zero", "every collective free (ring_seconds = 0)",
             lambda mp: mp.setattr(_st(), "ring_seconds", _zero), TESTS),
    Mutation("steptime.fp8_as_bf16", "FP8 GEMMs run at the bf16 peak", _fp8_as_bf16, TESTS),
    Mutation("steptime.pp_bubble_zero", "no pipeline bubble",
             lambda mp: mp.setattr(_st(), "bubble_seconds", _zero), TESTS),
    Mutation("steptime.recompute_free", "recomputation takes no time",
             lambda mp: mp.setattr(_st(), "recompute_term", lambda *a, **k: (0.0, 0.0)), TESTS),
    Mutation("steptime.nic_ignored", "collectives across nodes at NVLink bandwidth", _single_node_bw, TESTS),
]
