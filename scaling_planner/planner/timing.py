"""Time of a layout and of the plan (docs/planning.md §4.3, §5.2).

A layout is scored by the step-time model (:mod:`.steptime`, docs/planning.md §5.4): one optimizer step's seconds,
tokens/s, predicted MFU and HFU and a breakdown of the step (compute, memory-bound kernels, TP / DP / EP
communication, pipeline bubble, recompute). :func:`layout_step` is the one place a layout is handed to it.

The plan's time is then **days = D / (tokens/s) / goodput / 86,400** (:func:`days_from_throughput`). With an MFU
given (``--mfu``) the previous formula stays: days = C / (G · peak · MFU · goodput) / 86,400 (:func:`days`), and the
same formula solved for C or G (:func:`flops_in`, :func:`gpus_for`) gives a first guess of the budget from GPUs ×
days and of the GPU count for a deadline before the step model refines them.
"""

from __future__ import annotations

from ..hardware import GPU
from ..model import ModelShape
from . import defaults, steptime
from .steptime import StepTime


# ---- a layout's step (docs/planning.md §4.3, §5.4) --------------------------------------------------------------
def layout_step(shape: ModelShape, gpu: GPU, lay, seq: int, gpn: int, framework: str) -> StepTime:
    """The step-time model's prediction for layout ``lay`` (anything with tp, pp, dp, ep, micro_batch, grad_accum,
    zero_stage, recompute, sp, precision) of ``shape`` on ``gpu`` at ``seq`` tokens per sequence, ``gpn`` GPUs per node,
    ``framework``'s kernels."""
    return steptime.step_time(shape, gpu, tp=lay.tp, pp=lay.pp, dp=lay.dp, ep=lay.ep, micro_batch=lay.micro_batch,
                              grad_accum=lay.grad_accum, seq_len=seq, zero_stage=lay.zero_stage,
                              recompute=lay.recompute, sp=lay.sp, framework=framework, precision=lay.precision,
                              gpus_per_node=gpn)


def fractions(step: StepTime) -> dict[str, float]:
    """Each breakdown term as a fraction of the step (the layout's ``penalties``)."""
    return {k: v / step.seconds for k, v in step.breakdown.items()}


# ---- time (docs/planning.md §5.2) -------------------------------------------------------------------------------
def days_from_throughput(tokens: float, tokens_per_s: float, goodput: float) -> float:
    """Wall-clock days = D / (tokens/s) / goodput / 86,400: the step model's time for D training tokens."""
    return tokens / tokens_per_s / goodput / defaults.SECONDS_PER_DAY


def flops_per_gpu_day(peak_flops: float, mfu: float, goodput: float) -> float:
    """Useful FLOPs one GPU does in a wall-clock day: peak (FLOP/s) × MFU × goodput × 86,400 s."""
    return peak_flops * mfu * goodput * defaults.SECONDS_PER_DAY


def days(flops: float, gpus: float, peak_flops: float, mfu: float, goodput: float) -> float:
    """Wall-clock days at a given MFU (``--mfu``) = C / (G · peak · MFU · goodput) / 86,400."""
    return flops / (gpus * flops_per_gpu_day(peak_flops, mfu, goodput))


def flops_in(days_: float, gpus: float, peak_flops: float, mfu: float, goodput: float) -> float:
    """The budget C that G GPUs do in ``days_`` (the MFU formula solved for C)."""
    return days_ * gpus * flops_per_gpu_day(peak_flops, mfu, goodput)


def gpus_for(flops: float, days_: float, peak_flops: float, mfu: float, goodput: float) -> float:
    """GPUs (not rounded) that do C in ``days_`` (the MFU formula solved for G)."""
    return flops / (days_ * flops_per_gpu_day(peak_flops, mfu, goodput))


def gpu_hours(days_: float, gpus: int) -> float:
    """GPU-hours = 24 · days · G."""
    return 24 * days_ * gpus
