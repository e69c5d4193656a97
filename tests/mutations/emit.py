"""Mutations of the launch-file emitters (scaling_planner/render/emit.py; docs/planning.md §4.5) and the GPU
catalogue's link columns (scaling_planner/hardware.py); see tests/mutations/__init__.py."""

from __future__ import annotations

from . import Mutation

TESTS = ("tests/test_emit.py",)


def _emit():
    from scaling_planner.render import emit

    return emit


def _no_refusal(mp):
    mp.setattr(_emit(), "check_emittable", lambda *a, **k: None)


def _batch_over_all_gpus(mp):
    """The issue's bug: every GPU counted as a data-parallel process (FSDP file of a TP 2 layout: 2,072 vs 4,144)."""
    def wrong(plan):
        L = plan.layout
        return L.micro_batch, L.grad_accum, L.gpus, L.micro_batch * L.grad_accum * L.gpus

    mp.setattr(_emit(), "batch_identity", wrong)


def _no_sharded_optimizer(mp):
    e = _emit()
    real = e.megatron_arguments

    def drop(plan):
        return [(k, v) for k, v in real(plan) if k not in ("--use-distributed-optimizer", "--use-megatron-fsdp")]

    mp.setattr(e, "megatron_arguments", drop)


def _latency_ignored(mp):
    from scaling_planner import hardware

    hardware._load.cache_clear()
    real = hardware._load.__wrapped__

    def load():
        from dataclasses import replace

        return tuple(replace(g, intra_node_latency_us=hardware.NVLINK_LATENCY_US) for g in real())

    mp.setattr(hardware, "_load", load)


MUTATIONS = [
    Mutation("emit.no_refusal", "every stack accepts every layout and profile", _no_refusal, TESTS),
    Mutation("emit.batch_over_all_gpus", "the batch counts all GPUs as data parallel", _batch_over_all_gpus, TESTS),
    Mutation("emit.no_sharded_optimizer", "ZeRO stages not written as Megatron flags", _no_sharded_optimizer, TESTS),
    Mutation("hardware.pcie_latency", "PCIe GPUs get the NVLink link latency", _latency_ignored,
             ("tests/test_model_hardware.py",)),
]
