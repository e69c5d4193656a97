"""The fit rule: when a per-GPU device peak fits a GPU — the one home of the threshold (docs/memory.md §7.1).

``scaleplan memory`` (its verdict, its what-ifs and ``--solve``) and ``scaleplan budget`` (planner.layout.fits) all
call :func:`fits_gpu`; nothing else compares a peak with a GPU's memory.
"""

from __future__ import annotations

from ..units import GIB

# scaleplan: keep 5% of the GPU's memory back. The catalogue's memory is the whole card (nvidia-smi total, §12), the
# device peak already counts the CUDA context and the allocator's slack, so the 5% covers the estimator's error
# (a few % against measurements, §10) and what other processes or library workspaces take.
FIT_HEADROOM = 0.05


def usable_gib(gpu_memory_gib: float, headroom: float = FIT_HEADROOM) -> float:
    """GiB of a GPU's memory a device peak may use: (1 − headroom) × its memory."""
    return gpu_memory_gib * (1 - headroom)


def fits_gpu(device_bytes: float, gpu_memory_gib: float, headroom: float = FIT_HEADROOM) -> bool:
    """True when ``device_bytes`` (the device peak, what nvidia-smi shows) is at most :func:`usable_gib`."""
    return device_bytes / GIB <= usable_gib(gpu_memory_gib, headroom)
