"""MemoryEstimate, the result of estimate_memory, and its peak kinds (docs/memory.md §0, §7)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import ModelShape
from ..units import GIB
from .config import MemoryConfig


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU bytes at the peak, by component, with every assumption used."""

    shape: ModelShape
    config: MemoryConfig
    breakdown: dict[str, float]  # bytes: weights, gradients, optimizer, activations, logits, buffers, overhead
    # (+ fp8_weights under precision fp8: Transformer Engine's cached FP8 weight copies, docs/memory.md §13)
    allocated: float
    reserved: float
    device: float
    cpu_bytes: float
    params_total: int
    params_trainable: int
    params_active: int
    phases: dict[str, float]
    peak_phase: str
    rank: str
    assumptions: dict
    gpu_name: str | None = None
    gpu_memory_gib: float | None = None
    suggestions: tuple[dict, ...] = field(default=())

    @property
    def total(self) -> float:
        """Bytes of the requested peak kind."""
        return {"allocated": self.allocated, "reserved": self.reserved, "device": self.device}[self.config.peak_kind]

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    @property
    def fits(self) -> bool | None:
        return None if self.gpu_memory_gib is None else self.device / GIB <= self.gpu_memory_gib

    def headroom_gib(self) -> float | None:
        return None if self.gpu_memory_gib is None else self.gpu_memory_gib - self.device / GIB

    def to_dict(self) -> dict:
        per = {k: round(v / GIB, 4) for k, v in self.breakdown.items()}
        per["total"] = round(self.total / GIB, 4)
        return {"params_total": self.params_total, "params_trainable": self.params_trainable,
                "params_active": self.params_active, "per_gpu_gib": per,
                "peak_kind": self.config.peak_kind,
                "allocated_gib": round(self.allocated / GIB, 4), "reserved_gib": round(self.reserved / GIB, 4),
                "device_gib": round(self.device / GIB, 4), "cpu_gib": round(self.cpu_bytes / GIB, 4),
                "gpu": self.gpu_name, "gpu_memory_gib": None if self.gpu_memory_gib is None
                else round(self.gpu_memory_gib, 3), "fits": self.fits,
                "headroom_gib": None if self.gpu_memory_gib is None else round(self.headroom_gib(), 3),
                "peak_phase": self.peak_phase, "phases_gib": {k: round(v / GIB, 4) for k, v in self.phases.items()},
                "rank": self.rank, "assumptions": self.assumptions, "model": self.shape.describe(),
                "suggestions": list(self.suggestions)}


# ---------------------------------------------------------------------------- overhead (docs/memory.md §0, §7)
def reserved_and_device(allocated: float, c: MemoryConfig) -> tuple[float, float]:
    """(reserved, device) bytes: reserved = allocated × (1 + fragmentation) (caching-allocator slack); device =
    reserved + the CUDA context (cuda_context_gib GiB), what nvidia-smi shows."""
    reserved = allocated * (1 + c.fragmentation)
    return reserved, reserved + c.cuda_context_gib * GIB


def overhead_shown(allocated: float, reserved: float, device: float, peak_kind: str) -> float:
    """The ``overhead`` breakdown entry: what the requested peak kind adds to the allocated bytes."""
    return {"allocated": 0.0, "reserved": reserved - allocated, "device": device - allocated}[peak_kind]
