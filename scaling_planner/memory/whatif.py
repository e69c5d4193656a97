"""What-ifs: the largest micro-batch that fits, and the changes that make an estimate fit (docs/memory.md §7)."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ScalePlanError
from ..model import ModelShape
from ..units import GIB
from .config import MemoryConfig


def _estimate(shape, c, gpu):
    from .estimate import estimate_memory

    return estimate_memory(shape, c, gpu, suggest=False)


def max_micro_batch(shape: ModelShape, c: MemoryConfig, gpu, limit: int = 1024) -> int:
    """Largest micro-batch (≤ ``limit``) whose device peak fits ``gpu``, 0 if even 1 does not: doubling, then
    bisection."""
    def fits(mb):
        return _estimate(shape, replace(c, micro_batch=mb), gpu).fits

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def candidate_changes(shape: ModelShape, c: MemoryConfig, gpu) -> list[tuple[str, MemoryConfig]]:
    """(label, changed config) for each single change that lowers memory and applies to ``c`` (resolved)."""
    cands: list[tuple[str, MemoryConfig]] = []
    if c.attention == "eager":
        cands.append(("flash attention", replace(c, attention="flash")))
    if c.recompute == "none":
        cands.append(("selective recompute", replace(c, recompute="selective")))
    if c.recompute != "full":
        cands.append(("full recompute", replace(c, recompute="full")))
    if not c.chunked_ce:
        cands.append(("chunked cross-entropy", replace(c, chunked_ce=True)))
    if c.dp > 1 and c.zero < 3:
        for zz in range(c.zero + 1, 4):
            cands.append((f"ZeRO-{zz} over {c.dp} GPUs", replace(c, zero=zz)))
    if c.optimizer == "adamw":
        cands.append(("8-bit AdamW", replace(c, optimizer="adamw-8bit")))
    if c.dp > 1 or c.gpus > 1:
        cands.append(("offload optimizer to CPU (ZeRO-2)", replace(c, offload="optimizer", zero=max(c.zero, 2))))
    if c.method == "full":
        cands.append(("LoRA r=16 (all linear)", replace(c, method="lora", lora_rank=16)))
        cands.append(("QLoRA r=16 (all linear)", replace(c, method="qlora", lora_rank=16)))
    if c.method == "lora":
        cands.append((f"QLoRA r={c.lora_rank}", replace(c, method="qlora")))
    for g in (2, 4, 8, 16, 32, 64, 128, 256):
        if g > c.gpus and g % (c.tp * c.pp) == 0:
            cc = replace(c, gpus=g, dp=g // (c.tp * c.pp), zero=3)
            try:
                ok = _estimate(shape, cc, gpu).fits
            except ScalePlanError:
                continue
            if ok or g == 256:
                cands.append((f"ZeRO-3 over {g} GPUs", cc))
                break
    for t in (2, 4, 8):
        if t > c.tp and shape.n_heads % t == 0 and (t * c.pp) <= max(c.gpus, 8):
            g = max(c.gpus, t * c.pp)
            if g % (t * c.pp) == 0:
                cands.append((f"TP={t} on {g} GPUs", replace(c, tp=t, gpus=g, dp=g // (t * c.pp))))
                break
    if c.micro_batch > 1:
        cands.append(("micro-batch 1", replace(c, micro_batch=1)))
    return cands


def _row(label: str, est, fits: bool) -> dict:
    return {"change": label, "total_gib": round(est.device / GIB, 2), "fits": fits,
            "breakdown_gib": {k: round(v / GIB, 3) for k, v in est.breakdown.items()}}


def suggestions(shape: ModelShape, c: MemoryConfig, gpu, est) -> list[dict]:
    """Up to six single changes that make the estimate fit ``gpu`` (else the three closest), each with its device
    GiB and breakdown (docs/memory.md §7)."""
    out = []
    for label, cc in candidate_changes(shape, c, gpu):
        try:
            e2 = _estimate(shape, cc, gpu)
        except ScalePlanError:
            continue
        out.append(_row(label, e2, bool(e2.fits)))
    if c.micro_batch > 1:
        mb = max_micro_batch(shape, c, gpu, limit=c.micro_batch)
        if mb:
            out.append(_row(f"max micro-batch that fits: {mb}", _estimate(shape, replace(c, micro_batch=mb), gpu),
                            True))
    fitting = [o for o in out if o["fits"]]
    return fitting[:6] if fitting else sorted(out, key=lambda o: o["total_gib"])[:3]
