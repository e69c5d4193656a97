"""MemoryEstimate, the result of estimate_memory, and its peak kinds (docs/memory.md §0, §7)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import ModelShape
from ..units import GIB
from .config import MemoryConfig
from .fit import fits_gpu, usable_gib


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
    # bytes of the resident model states on the GPU (weights, gradients, optimizer), whatever the phase: ZeRO paper
    # Fig. 1 (docs/memory.md §2.1); None when not computed (inference)
    model_states: dict[str, float] | None = None

    @property
    def total(self) -> float:
        """Bytes of the requested peak kind."""
        return {"allocated": self.allocated, "reserved": self.reserved, "device": self.device}[self.config.peak_kind]

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    @property
    def fits(self) -> bool | None:
        """Whether the device peak fits the GPU by the one fit rule (memory.fit.fits_gpu, docs/memory.md §7.1)."""
        return None if self.gpu_memory_gib is None else fits_gpu(self.device, self.gpu_memory_gib)

    @property
    def usable_gib(self) -> float | None:
        """GiB the device peak may use on the GPU (memory.fit.usable_gib)."""
        return None if self.gpu_memory_gib is None else usable_gib(self.gpu_memory_gib)

    def headroom_gib(self) -> float | None:
        """GiB left below the usable memory (negative: short by that much)."""
        return None if self.gpu_memory_gib is None else self.usable_gib - self.device / GIB

    def to_dict(self) -> dict:
        per = {k: round(v / GIB, 4) for k, v in self.breakdown.items()}
        per["total"] = round(self.total / GIB, 4)
        return {"params_total": self.params_total, "params_trainable": self.params_trainable,
                "params_active": self.params_active, "per_gpu_gib": per,
                "peak_kind": self.config.peak_kind,
                "allocated_gib": round(self.allocated / GIB, 4), "reserved_gib": round(self.reserved / GIB, 4),
                "device_gib": round(self.device / GIB, 4), "cpu_gib": round(self.cpu_bytes / GIB, 4),
                "gpu": self.gpu_name, "gpu_memory_gib": None if self.gpu_memory_gib is None
                else round(self.gpu_memory_gib, 3), "usable_gib": None if self.gpu_memory_gib is None
                else round(self.usable_gib, 3), "fits": self.fits,
                "headroom_gib": None if self.gpu_memory_gib is None else round(self.headroom_gib(), 3),
                "peak_phase": self.peak_phase, "phases_gib": {k: round(v / GIB, 4) for k, v in self.phases.items()},
                "rank": self.rank, "assumptions": self.assumptions, "model": self.shape.describe(),
                "suggestions": list(self.suggestions), "model_states_gib": self.model_states_gib()}

    def model_states_gib(self) -> dict | None:
        """{weights, gradients, optimizer, total} GiB resident on the GPU whatever the phase (None: not computed)."""
        if self.model_states is None:
            return None
        out = {k: round(v / GIB, 4) for k, v in self.model_states.items()}
        out["total"] = round(sum(self.model_states.values()) / GIB, 4)
        return out


# ---------------------------------------------------------------------------- overhead (docs/memory.md §0, §7)
def reserved_and_device(allocated: float, c: MemoryConfig) -> tuple[float, float]:
    """(reserved, device) bytes: reserved = allocated × (1 + fragmentation) (caching-allocator slack); device =
    reserved + the CUDA context (cuda_context_gib GiB), what nvidia-smi shows."""
    reserved = allocated * (1 + c.fragmentation)
    return reserved, reserved + c.cuda_context_gib * GIB


def overhead_shown(allocated: float, reserved: float, device: float, peak_kind: str) -> float:
    """The ``overhead`` breakdown entry: what the requested peak kind adds to the allocated bytes."""
    return {"allocated": 0.0, "reserved": reserved - allocated, "device": device - allocated}[peak_kind]
