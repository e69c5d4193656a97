"""The layout score (throughput model, docs/planning.md §4.3) and the one time formula (§5.2).

Throughput model: each penalty term is its own function of the layout, in units of one ideal step's time, and
:func:`combine` is the one formula that turns them into a relative throughput (ideal = 1). It ranks layouts and
scales the best layout's MFU to the others; it does not set the absolute time, which is the days formula below.
Conventions: bandwidths in GB/s per GPU per direction (``data/gpus.csv``), activations and gradients in bf16
(2 bytes), 6·N FLOPs per token (forward + backward), ``F`` = achieved FLOP/s per GPU = dense BF16 peak × MFU.
"""

from __future__ import annotations

from ..hardware import GPU
from ..model import ModelShape
from . import defaults

BF16_BYTES = 2
TP_COEFFICIENT = 3.0  # scaleplan's: ratio (t-1)·F/(3·h·bw); conservative vs 4.5 from four ring all-reduces (§4.3)
DP_OVERLAP = 2 / 3  # the backward share of a micro-batch's 6N FLOPs (4N of 6N) that hides the gradient reduce
ZERO3_REGATHER = 1.5  # ZeRO-3: parameters all-gathered again every micro-batch, forward and backward
RECOMPUTE_FACTOR = {"none": 1.0, "selective": 1.0, "full": 0.75}  # 6/8: full recompute adds one forward (Eq. 4 of
# Narayanan et al. 2021: 8 instead of 6 FLOPs per parameter per token); selective is taken as free


# ---- building blocks ------------------------------------------------------------------------------------------
def achieved_flops(gpu: GPU, mfu: float) -> float:
    """F: achieved FLOP/s per GPU, the dense BF16 peak (fp16 on GPUs without bf16) × MFU."""
    return gpu.peak_tflops("bf16") * 1e12 * mfu


def link_gb_s(gpu: GPU, span_gpus: int, gpus_per_node: int) -> float:
    """Bandwidth (GB/s) of a group of ``span_gpus`` consecutive ranks: NVLink/PCIe inside a node, else the NIC."""
    return gpu.inter_node_gb_s if span_gpus > gpus_per_node else gpu.intra_node_gb_s


def micro_batch_seconds(params_active: float, tp: int, pp: int, micro_batch: int, seq: int, F: float) -> float:
    """t_mb: forward + backward of one micro-batch on one GPU, 6·N_active/(t·p) FLOPs per token × b·s tokens / F."""
    return 6 * params_active / (tp * pp) * micro_batch * seq / F


# ---- penalty terms (each a fraction of the ideal time) ----------------------------------------------------------
def tp_comm(tp: int, F: float, d_model: int, bw_gb_s: float) -> float:
    """TP all-reduces of b·s·h values per layer (two forward, two backward; Narayanan et al. 2021 §2.3), blocking:
    (t − 1)·F/(3·h·bw). Zero without TP."""
    if tp <= 1:
        return 0.0
    return (tp - 1) * F / (TP_COEFFICIENT * d_model * bw_gb_s * 1e9)


def pp_bubble(pp: int, grad_accum: int) -> float:
    """1F1B / GPipe pipeline bubble (p − 1)/m of the ideal time (Narayanan et al. 2021 §2.2.1). Zero without PP."""
    return (pp - 1) / grad_accum if pp > 1 else 0.0


def pp_comm(tp: int, pp: int, micro_batch: int, seq: int, d_model: int, bw_gb_s: float, t_mb: float) -> float:
    """PP point-to-point: 2·2·b·s·h/t bytes per micro-batch per stage boundary (forward and backward, bf16) over
    ``bw_gb_s``, ÷ t_mb. Zero without PP."""
    if pp <= 1:
        return 0.0
    return (2 * BF16_BYTES * micro_batch * seq * d_model / tp / (bw_gb_s * 1e9)) / t_mb


def dp_exposed(dp: int, params_total: float, tp: int, pp: int, zero_stage: int, grad_accum: int, bw_gb_s: float,
               t_mb: float) -> float:
    """Exposed DP time ÷ (m·t_mb): ring all-reduce of one rank's bf16 gradients, 2·(d − 1)/d × N_total/(t·p) × 2 B
    (× 1.5·m under ZeRO-3: parameters re-gathered every micro-batch), minus what hides behind the backward of the
    last micro-batch (⅔·t_mb; × m under ZeRO-3). Zero without DP."""
    if dp <= 1:
        return 0.0
    params_rank = params_total / (tp * pp)
    vol = 2 * (dp - 1) / dp * params_rank * BF16_BYTES  # bytes, ring all-reduce
    if zero_stage == 3:
        vol *= ZERO3_REGATHER * grad_accum
    t_dp = vol / (bw_gb_s * 1e9)
    overlap = DP_OVERLAP * t_mb * (grad_accum if zero_stage == 3 else 1)
    return max(0.0, t_dp - overlap) / (grad_accum * t_mb)


def recompute_factor(recompute: str) -> float:
    """Throughput factor of activation recomputation: full 0.75 (6/8), none and selective 1."""
    return RECOMPUTE_FACTOR[recompute]


def combine(tp_comm: float, pp_bubble: float, pp_comm: float, dp_exposed: float, recompute: float) -> float:
    """Relative throughput = recompute factor / ((1 + TP + PP comm)·(1 + bubble) + DP exposed)."""
    return recompute / ((1 + tp_comm + pp_comm) * (1 + pp_bubble) + dp_exposed)


def throughput(shape: ModelShape, gpu: GPU, lay: dict, seq: int, mfu: float, gpn: int) -> tuple[float, dict]:
    """Relative throughput (ideal = 1) of layout ``lay`` (tp, pp, dp, zero_stage, micro_batch, grad_accum,
    recompute) and its penalties (``tp_comm``, ``pp_bubble``, ``pp_comm``, ``dp_comm_exposed``, ``recompute``:
    fractions of the ideal time). ``gpn`` is GPUs per node (docs/planning.md §4.3)."""
    t, p, d, mb, m = lay["tp"], lay["pp"], lay["dp"], lay["micro_batch"], lay["grad_accum"]
    F = achieved_flops(gpu, mfu)
    h = shape.d_model
    t_mb = micro_batch_seconds(shape.params_active, t, p, mb, seq, F)
    rec = recompute_factor(lay["recompute"])
    pen = {"tp_comm": tp_comm(t, F, h, gpu.intra_node_gb_s),
           "pp_bubble": pp_bubble(p, m),
           "pp_comm": pp_comm(t, p, mb, seq, h, link_gb_s(gpu, t * p, gpn), t_mb),
           "dp_comm_exposed": dp_exposed(d, shape.params_total, t, p, lay["zero_stage"], m,
                                         link_gb_s(gpu, t * p * d, gpn), t_mb),  # DP spans nodes once the job does
           "recompute": 1 / rec - 1}
    eff = combine(pen["tp_comm"], pen["pp_bubble"], pen["pp_comm"], pen["dp_comm_exposed"], rec)
    return eff, pen


# ---- time (docs/planning.md §5.2) -------------------------------------------------------------------------------
def flops_per_gpu_day(peak_flops: float, mfu: float, goodput: float) -> float:
    """Useful FLOPs one GPU does in a wall-clock day: peak (FLOP/s) × MFU × goodput × 86,400 s."""
    return peak_flops * mfu * goodput * defaults.SECONDS_PER_DAY


def days(flops: float, gpus: float, peak_flops: float, mfu: float, goodput: float) -> float:
    """Wall-clock days = C / (G · peak · MFU · goodput) / 86,400."""
    return flops / (gpus * flops_per_gpu_day(peak_flops, mfu, goodput))


def flops_in(days_: float, gpus: float, peak_flops: float, mfu: float, goodput: float) -> float:
    """The budget C that G GPUs do in ``days_`` (the days formula solved for C)."""
    return days_ * gpus * flops_per_gpu_day(peak_flops, mfu, goodput)


def gpus_for(flops: float, days_: float, peak_flops: float, mfu: float, goodput: float) -> float:
    """GPUs (not rounded) that do C in ``days_`` (the days formula solved for G)."""
    return flops / (days_ * flops_per_gpu_day(peak_flops, mfu, goodput))


def gpu_hours(days_: float, gpus: int) -> float:
    """GPU-hours = 24 · days · G."""
    return 24 * days_ * gpus
