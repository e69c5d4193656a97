"""GPU catalogue (``data/gpus.csv``, from vendor datasheets; dense peaks, i.e. without 2:4 sparsity).

* ``memory_gib``: what the driver exposes (nvidia-smi total, MiB/1024) where known, else the marketed size
  (HBM products are binary GB). Compare *device* peaks (context included) against it.
* ``peak_tflops(dtype)``: dense tensor-core peak; V100/T4 have no bf16, so bf16 training falls back to fp16 peaks.
* ``intra_node_gb_s`` / ``inter_node_gb_s``: per-GPU one-direction bandwidth used by the communication model
  (NVLink per direction; inter-node: one 200/400 Gb/s NIC per GPU); ``bandwidth_source`` says where each row's pair
  comes from, or that it is assumed (docs/planning.md §5.3).
* ``intra_node_latency_us`` / ``inter_node_latency_us``: per-step link latency of a ring collective (NCCL's Simple
  protocol hardware latencies, NVLink or PCIe within a node, the network between nodes; docs/planning.md §5.3). A
  blank cell (TPUs: no NCCL) takes the NVLink / network defaults below.
* Prices are dated and volatile: override with ``--price`` or a prices file (JSON/TOML ``{"h100": 2.5}``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .errors import ScalePlanError, unknown_name

DATA = Path(__file__).resolve().parent / "data" / "gpus.csv"

# NCCL src/graph/tuning.cc @ NVIDIA/nccl 5067397 (ncclTunerConstantsDefaults.hwLatencies, ring, Simple protocol): per-
# step hardware latency of NVLink 3.4 us, PCIe 5.7 us, network 14.0 us (docs/planning.md §5.3). Rows without their own.
NVLINK_LATENCY_US = 3.4
NET_LATENCY_US = 14.0


@dataclass(frozen=True)
class GPU:
    key: str
    name: str
    aliases: tuple[str, ...]
    memory_gb_marketed: float
    memory_gib: float
    bf16_tflops: float | None
    fp16_tflops: float | None
    fp32_tflops: float | None
    tf32_tflops: float | None
    fp8_tflops: float | None
    mem_bw_gb_s: float
    intra_node_gb_s: float
    inter_node_gb_s: float
    gpus_per_node: int
    family: str
    price_usd_per_hour: float | None
    price_source: str
    source: str
    verification: str
    bandwidth_source: str = ""
    intra_node_latency_us: float = NVLINK_LATENCY_US
    inter_node_latency_us: float = NET_LATENCY_US

    def peak_tflops(self, dtype: str = "bf16") -> float:
        if dtype == "fp8" and self.fp8_tflops:
            return self.fp8_tflops
        if dtype in ("bf16", "fp8") and self.bf16_tflops:
            return self.bf16_tflops
        if dtype in ("bf16", "fp16", "fp8") and self.fp16_tflops:
            return self.fp16_tflops
        if dtype == "tf32" and self.tf32_tflops:
            return self.tf32_tflops
        if self.fp32_tflops:
            return self.fp32_tflops
        raise ScalePlanError(f"{self.name}: no peak throughput known for {dtype}")

    @property
    def supports_bf16(self) -> bool:
        return bool(self.bf16_tflops)

    def describe(self) -> dict:
        return {"key": self.key, "name": self.name, "memory_gib": round(self.memory_gib, 2),
                "bf16_tflops": self.bf16_tflops, "fp16_tflops": self.fp16_tflops, "fp8_tflops": self.fp8_tflops,
                "mem_bw_gb_s": self.mem_bw_gb_s, "gpus_per_node": self.gpus_per_node,
                "intra_node_gb_s": self.intra_node_gb_s, "inter_node_gb_s": self.inter_node_gb_s,
                "intra_node_latency_us": self.intra_node_latency_us,
                "inter_node_latency_us": self.inter_node_latency_us, "bandwidth_source": self.bandwidth_source,
                "price_usd_per_hour": self.price_usd_per_hour, "price_source": self.price_source}


def _f(x: str):
    return float(x) if x not in ("", None) else None


@lru_cache(maxsize=1)
def _load() -> tuple[GPU, ...]:
    out = []
    with open(DATA, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            mib = _f(r["nvidia_smi_total_mib"])
            out.append(GPU(key=r["key"], name=r["name"], aliases=tuple(a for a in r["aliases"].split(";") if a),
                           memory_gb_marketed=float(r["memory_gb_marketed"]),
                           memory_gib=mib / 1024 if mib else float(r["memory_gb_marketed"]),
                           bf16_tflops=_f(r["bf16_tflops"]), fp16_tflops=_f(r["fp16_tflops"]),
                           fp32_tflops=_f(r["fp32_tflops"]), tf32_tflops=_f(r["tf32_tflops"]),
                           fp8_tflops=_f(r["fp8_tflops"]), mem_bw_gb_s=float(r["mem_bw_gb_s"]),
                           intra_node_gb_s=float(r["intra_node_gb_s"]), inter_node_gb_s=float(r["inter_node_gb_s"]),
                           gpus_per_node=int(r["gpus_per_node"]), family=r["family"],
                           price_usd_per_hour=_f(r["price_usd_per_hour"]), price_source=r["price_source"],
                           source=r["source"], verification=r["verification"],
                           bandwidth_source=r["bandwidth_source"],
                           intra_node_latency_us=_f(r["intra_node_latency_us"]) or NVLINK_LATENCY_US,
                           inter_node_latency_us=_f(r["inter_node_latency_us"]) or NET_LATENCY_US))
    return tuple(out)


def list_gpus() -> list[GPU]:
    return list(_load())


def _norm(s: str) -> str:
    return s.strip().lower().replace("_", "-").replace(" ", "-")


def get_gpu(name: str, prices: dict[str, float] | None = None) -> GPU:
    """Look up a GPU by key, name or alias (case-insensitive); unknown names get the list and the closest match."""
    key = _norm(name)
    for g in _load():
        if key in {g.key, _norm(g.name), *g.aliases}:
            if prices:
                for k in (g.key, *g.aliases):
                    if k in prices:
                        return replace(g, price_usd_per_hour=float(prices[k]), price_source="user prices file")
            return g
    names = [g.key for g in _load()]
    raise unknown_name("GPU", name, names, names + [a for g in _load() for a in g.aliases])
