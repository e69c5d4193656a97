"""Compute planner: budget -> (N, D) from a law -> model shape -> memory-checked parallel layout -> time and cost.

Conventions (docs/planning.md):
* FLOPs: ``C = 6·N·D`` with N total parameters (as model cards count; 6N per token). ``flops_attn`` adds the
  attention term 12·L·h·s per token (PaLM App. B, full square).
* ``mfu`` is model-FLOPs utilisation in that 6N counting, against the GPU's dense BF16 peak; it is the step MFU the
  *best* layout reaches (defaults from docs/planning.md §5.1: A100 0.45, H100/H200 0.40, minus 0.05 below 3B params or
  above 4,096 GPUs). Other layouts are scaled by the throughput model (pipeline bubble, exposed TP/DP/PP
  communication, recompute). ``goodput`` (default 0.9) covers restarts, evals and downtime.
* days = C / (G · peak · mfu · goodput) / 86,400; GPU-hours = 24 · days · G; cost = GPU-hours · $/GPU-hour.
* Global batch: DeepSeek LLM's B_opt = 0.2920·C^0.3271 tokens, learning rate 0.3118·C^-0.1250 (arXiv:2401.02954).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import ScalePlanError
from .hardware import GPU, get_gpu
from .io.law_file import load_law
from .laws import ScalingLaw
from .memory import MemoryConfig, estimate_memory
from .model import ModelShape, shape_for_params
from .units import GIB

DEFAULT_LAW = "epoch2024"
MFU_DEFAULTS = {"a100": 0.45, "h100": 0.40}  # docs/planning.md §5.1 (BF16 step MFU, 6N counting)
MFU_FALLBACK = 0.40
DEFAULT_DAYS = 30.0  # target wall-clock when neither --gpus nor --deadline-days is given
SECONDS_PER_DAY = 86_400.0
MIN_PARAMS = 2e7  # the smallest Llama-like shape the planner builds (1 layer, d_model 256: 17M with vocab 32k)
MAX_PARAMS = 4e13  # the largest Llama-like shape the planner builds (d_model 65,536, ~1,000 layers)
MAX_GPUS = 1_000_000  # larger clusters than any built: a plan needing more is an input error


@dataclass(frozen=True)
class Layout:
    gpus: int
    dp: int
    tp: int
    pp: int
    zero_stage: int
    micro_batch: int
    grad_accum: int
    global_batch: int
    recompute: str
    sp: bool
    memory_gib: float
    efficiency: float  # relative throughput of this layout (1 = ideal; penalties applied)
    penalties: dict

    def to_dict(self) -> dict:
        return {"gpus": self.gpus, "dp": self.dp, "tp": self.tp, "pp": self.pp, "zero_stage": self.zero_stage,
                "micro_batch": self.micro_batch, "grad_accum": self.grad_accum, "global_batch": self.global_batch,
                "recompute": self.recompute,
                "sequence_parallel": self.sp, "memory_per_gpu_gib": round(self.memory_gib, 2),
                "relative_throughput": round(self.efficiency, 4),
                "penalties": {k: round(v, 4) for k, v in self.penalties.items()}}


@dataclass(frozen=True)
class Plan:
    law: str
    flops: float
    params: float
    tokens: float
    loss: float | None
    interval: dict
    comparison: list
    shape: ModelShape
    flops_attn: float
    layout: Layout
    memory: object
    alternatives: list
    gpu: GPU
    days: float
    gpu_hours: float
    cost_usd: float | None
    price: float | None
    mfu: float
    goodput: float
    seq_len: int
    global_batch: int
    learning_rate: float
    notes: tuple[str, ...] = ()
    assumptions: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict:
        s = self.shape
        return {
            "law": self.law, "flops": self.flops, "flops_6nd": 6 * self.params * self.tokens,
            "flops_attn": self.flops_attn, "params": self.params, "tokens": self.tokens,
            "tokens_per_param": self.tokens_per_param, "loss": self.loss, "interval": self.interval,
            "comparison": self.comparison,
            "shape": {"n_layers": s.n_layers, "d_model": s.d_model, "n_heads": s.n_heads, "n_kv_heads": s.n_kv_heads,
                      "ffn": s.ffn, "vocab": s.vocab, "head_dim": s.head_dim, "params_total": s.params_total},
            "layout": {k: v for k, v in self.layout.to_dict().items() if k not in ("penalties",)},
            "memory_per_gpu_gib": round(self.layout.memory_gib, 3),
            "memory_breakdown_gib": self.memory.to_dict()["per_gpu_gib"],
            "gpu": self.gpu.key, "gpu_memory_gib": round(self.gpu.memory_gib, 2),
            "days": self.days, "gpu_hours": self.gpu_hours, "cost_usd": self.cost_usd,
            "price_usd_per_gpu_hour": self.price, "mfu": self.mfu, "goodput": self.goodput,
            "mfu_counts": "6N FLOPs per token (model FLOPs, no recompute), dense BF16 peak",
            "seq_len": self.seq_len, "global_batch": self.global_batch,
            "global_batch_tokens": self.global_batch * self.seq_len, "learning_rate": self.learning_rate,
            "alternatives": [dict(a) for a in self.alternatives], "notes": list(self.notes),
            "assumptions": self.assumptions, **self.extras,
        }


# --------------------------------------------------------------------------------------------- allocation
def _solve_log(f, lo, hi, target, it=200):
    """Bisection in log space for increasing f: f(x) = target."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(it):
        m = 0.5 * (a + b)
        if f(math.exp(m)) < target:
            a = m
        else:
            b = m
    return math.exp(0.5 * (a + b))


def optimal_for_params(law: ScalingLaw, N: float) -> float:
    """Compute C at which ``law`` says N parameters are optimal."""
    return _solve_log(lambda C: float(law.optimal(C)[0]), 1e10, 1e32, N)


def optimal_for_tokens(law: ScalingLaw, D: float) -> float:
    return _solve_log(lambda C: float(law.optimal(C)[1]), 1e10, 1e32, D)


def compute_for_loss(law: ScalingLaw, target: float) -> float:
    if not law.has_loss:
        raise ScalePlanError(f"--target-loss needs a law that predicts loss; {law.name} is an allocation rule")
    floor = law.params.get("E")
    if floor is not None and target <= floor:
        raise ScalePlanError(f"--target-loss {target:g} is at or below the law's irreducible loss E = {floor:.4g}")

    def loss_at(C):
        N, D = law.optimal(C)
        return -float(law.loss(N, D))

    C = _solve_log(loss_at, 1e10, 1e32, -target)
    if C > 9.9e31:
        raise ScalePlanError(f"--target-loss {target:g} is not reachable below 1e32 FLOPs with {law.name}")
    return C


def inference_aware(law: ScalingLaw, C: float, inference_tokens: float) -> dict:
    """Sardana et al. 2024: the N, D_train that reach the Chinchilla-optimal loss at C with the least
    training + inference FLOPs (6·N·D_train + 2·N·D_inference)."""
    if law.form not in ("chinchilla", "data_constrained"):
        raise ScalePlanError("--inference-tokens needs a parametric law (E + A/N^alpha + B/D^beta), e.g. epoch2024")
    p = law.params
    N0, D0 = law.optimal(C)
    target = float(law.loss(N0, D0))
    Ns = np.geomspace(N0 / 50, N0, 4000)
    gap = target - p["E"] - p["A"] / Ns ** p["alpha"]
    ok = gap > 0
    Ns = Ns[ok]
    Dtr = (p["B"] / gap[ok]) ** (1 / p["beta"])
    total = 6 * Ns * Dtr + 2 * Ns * inference_tokens
    i = int(np.argmin(total))
    base = 6 * N0 * D0 + 2 * N0 * inference_tokens
    return {"params": float(Ns[i]), "tokens": float(Dtr[i]), "loss": target, "train_flops": float(6 * Ns[i] * Dtr[i]),
            "lifetime_flops": float(total[i]), "chinchilla_lifetime_flops": float(base),
            "saving_fraction": float(1 - total[i] / base), "chinchilla_params": float(N0)}


def data_constrained(law: ScalingLaw, C: float, unique_tokens: float) -> dict:
    """Muennighoff et al. 2023: allocate C when the data has only ``unique_tokens``; repeated epochs are discounted
    with their R_D* = 15.4 and R_N* = 5.3 (applied to this law's E, A, B, alpha, beta)."""
    if law.form not in ("chinchilla", "data_constrained"):
        raise ScalePlanError("--unique-tokens needs a parametric law (E + A/N^alpha + B/D^beta)")
    dc = load_law("muennighoff2023")
    merged = replace(dc, params={**law.params, "R_D_star": dc.params["R_D_star"],
                                 "R_N_star": dc.params["R_N_star"]})
    N0, D0 = law.optimal(C)
    Ns = np.geomspace(N0 / 30, N0 * 30, 3000)
    Ds = C / (6 * Ns)
    L = np.asarray(merged.loss(Ns, Ds, unique_tokens=unique_tokens))
    i = int(np.argmin(L))
    return {"params": float(Ns[i]), "tokens": float(Ds[i]), "loss": float(L[i]),
            "epochs": float(Ds[i] / unique_tokens), "unconstrained_params": float(N0),
            "unconstrained_tokens": float(D0)}


def law_interval(law: ScalingLaw, C: float, fixed: tuple[float, float] | None = None) -> dict:
    """95% range over the law's bootstrap samples (empty when it has none): of N_opt, D_opt and the loss at C, or —
    when N and D were fixed by the user or by an inference-aware / data-constrained allocation — of the loss at
    those ``fixed`` (N, D) only."""
    laws = law.sample_laws()
    if not laws:
        return {}
    q = lambda x: [float(v) for v in np.nanpercentile(x, [2.5, 97.5])]  # noqa: E731
    if fixed is not None:
        if not law.has_loss:
            return {}
        Ls = [float(lw.loss(*fixed)) for lw in laws]
        return {"loss": q(Ls), "samples": len(Ls), "source": "law's bootstrap samples (loss at the chosen N, D)"}
    Ns, Ds, Ls = [], [], []
    for lw in laws:
        try:
            n, d = lw.optimal(C)
        except (ScalePlanError, FloatingPointError, ZeroDivisionError):
            continue
        if np.isfinite(n) and np.isfinite(d) and n > 0:
            Ns.append(n)
            Ds.append(d)
            Ls.append(lw.loss(n, d) if lw.has_loss else np.nan)
    if len(Ns) < 10:
        return {}
    out = {"params": q(Ns), "tokens": q(Ds), "tokens_per_param": q(np.array(Ds) / np.array(Ns)),
           "samples": len(Ns), "source": "law's bootstrap samples"}
    if law.has_loss:
        out["loss"] = q(Ls)
    return out


def compare_laws(names, C) -> list[dict]:
    out = []
    for n in names:
        lw = load_law(n)
        N, D = lw.optimal(C)
        out.append({"law": lw.name, "params": float(N), "tokens": float(D), "tokens_per_param": float(D / N),
                    "loss": float(lw.loss(N, D)) if lw.has_loss else None,
                    "N_counts": lw.conventions.get("N", "?").split(" ")[0]})
    return out


# --------------------------------------------------------------------------------------------- layout
def default_mfu(gpu: GPU, params: float, gpus: int | None) -> tuple[float, str]:
    base = MFU_DEFAULTS.get(gpu.family, MFU_FALLBACK)
    why = f"{gpu.family} default {base:.2f} (docs/planning.md §5.1)" if gpu.family in MFU_DEFAULTS else \
        f"no published range for {gpu.family}; assumed {base:.2f}"
    if params < 3e9:
        base -= 0.05
        why += ", -0.05 below 3B params"
    if gpus and gpus > 4096:
        base -= 0.05
        why += ", -0.05 above 4,096 GPUs"
    return base, why


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def throughput(shape: ModelShape, gpu: GPU, lay: dict, seq: int, mfu: float, gpn: int) -> tuple[float, dict]:
    """Relative throughput (ideal = 1) of a layout: pipeline bubble, exposed communication, recompute."""
    t, p, d, mb, m = lay["tp"], lay["pp"], lay["dp"], lay["micro_batch"], lay["grad_accum"]
    F = gpu.peak_tflops("bf16") * 1e12 * mfu  # achieved FLOP/s per GPU
    h = shape.d_model
    pen = {}
    # compute time of one micro-batch on one GPU (forward + backward, 6N per token)
    t_mb = 6 * shape.params_active / (t * p) * mb * seq / F
    # TP: two all-reduces of b·s·h per layer forward and backward, blocking (ratio (t-1)·F/(3·h·bw))
    tp_ratio = 0.0
    if t > 1:
        tp_ratio = (t - 1) * F / (3 * h * gpu.intra_node_gb_s * 1e9)
    pen["tp_comm"] = tp_ratio
    # PP bubble (1F1B): (p-1)/m of the ideal time
    bubble = (p - 1) / m if p > 1 else 0.0
    pen["pp_bubble"] = bubble
    # PP point-to-point: b·s·h activations per micro-batch per stage boundary, forward and backward
    pp_ratio = 0.0
    if p > 1:
        bw = gpu.inter_node_gb_s if t * p > gpn else gpu.intra_node_gb_s
        pp_ratio = (2 * 2 * mb * seq * h / t / (bw * 1e9)) / t_mb
    pen["pp_comm"] = pp_ratio
    # DP: gradient reduce (+ parameter all-gather for ZeRO-3) overlapped with the last micro-batch's backward
    dp_exposed = 0.0
    if d > 1:
        bw = gpu.inter_node_gb_s if t * p * d > gpn else gpu.intra_node_gb_s  # DP spans nodes once the job does
        params_rank = shape.params_total / (t * p)
        vol = 2 * (d - 1) / d * params_rank * 2  # bf16 bytes, ring all-reduce
        if lay["zero_stage"] == 3:
            vol *= 1.5 * m  # parameters re-gathered every micro-batch (forward and backward)
        t_dp = vol / (bw * 1e9)
        overlap = (2 / 3) * t_mb * (m if lay["zero_stage"] == 3 else 1)
        dp_exposed = max(0.0, t_dp - overlap) / (m * t_mb)
    pen["dp_comm_exposed"] = dp_exposed
    rec = {"none": 1.0, "selective": 1.0, "full": 0.75}[lay["recompute"]]
    pen["recompute"] = 1 / rec - 1
    eff = rec / ((1 + tp_ratio + pp_ratio) * (1 + bubble) + dp_exposed)
    return eff, pen


def search_layouts(shape: ModelShape, gpu: GPU, gpus: int, global_batch: int, seq: int, mfu: float,
                   gpus_per_node: int, framework: str = "megatron", headroom: float = 0.05,
                   max_results: int = 4) -> list[Layout]:
    """Enumerate TP x PP x DP x ZeRO x micro-batch x recompute; keep layouts that fit; best first."""
    out = []
    mem_cache = {}
    for t in (1, 2, 4, 8):
        if t > min(gpus_per_node, gpus) or shape.n_heads % t or (shape.n_kv_heads % t and t % shape.n_kv_heads):
            continue
        for p in _divisors(shape.n_layers):
            if t * p > gpus or gpus % (t * p) or p > 64:
                continue
            d = gpus // (t * p)
            for z in (0, 1, 2, 3):
                if p > 1 and z > 1:
                    continue  # ZeRO-2/3 do not combine with pipeline parallelism (Megatron, DeepSpeed)
                if d == 1 and z > 0:
                    continue
                for mb in (1, 2, 4, 8):
                    # gradient accumulation that keeps the global batch within 2x of the target
                    m = max(1, round(global_batch / (d * mb)), p if p > 1 else 1)
                    gbs = m * d * mb
                    if not (global_batch / 2 <= gbs <= global_batch * 2):
                        continue
                    for rc in ("none", "full"):
                        sp = t > 1
                        key = (t, p, d, z, mb, rc, min(m, p))
                        if key not in mem_cache:
                            cfg = MemoryConfig(framework=framework, gpus=gpus, tp=t, pp=p, dp=d, zero=z, sp=sp,
                                               seq_len=seq, micro_batch=mb, grad_accum=m, recompute=rc)
                            try:
                                mem_cache[key] = estimate_memory(shape, cfg, gpu, suggest=False)
                            except ScalePlanError:
                                mem_cache[key] = None
                        est = mem_cache[key]
                        if est is None or est.device / GIB > gpu.memory_gib * (1 - headroom):
                            continue
                        lay = dict(tp=t, pp=p, dp=d, zero_stage=z, micro_batch=mb, grad_accum=m, recompute=rc)
                        eff, pen = throughput(shape, gpu, lay, seq, mfu, gpus_per_node)
                        out.append(Layout(gpus=gpus, dp=d, tp=t, pp=p, zero_stage=z, micro_batch=mb, grad_accum=m,
                                          global_batch=gbs, recompute=rc, sp=sp, memory_gib=est.device / GIB, efficiency=eff,
                                          penalties=pen))
    # best throughput; ties: less model parallelism, then less memory
    out.sort(key=lambda L: (-round(L.efficiency, 4), L.tp * L.pp, L.memory_gib))
    # keep distinct alternatives (differing in more than micro-batch)
    seen, uniq = set(), []
    for L in out:
        k = (L.tp, L.pp, L.zero_stage, L.recompute)
        if k in seen:
            continue
        seen.add(k)
        uniq.append(L)
    return uniq[:max_results]


def why_lost(best: Layout, alt: Layout) -> str:
    rel = alt.efficiency / best.efficiency - 1
    reasons = []
    for k, label in (("pp_bubble", "pipeline bubble"), ("tp_comm", "TP communication"),
                     ("dp_comm_exposed", "exposed DP communication"), ("recompute", "recompute"),
                     ("pp_comm", "PP communication")):
        if alt.penalties.get(k, 0) > best.penalties.get(k, 0) + 1e-3:
            reasons.append(f"{label} {alt.penalties[k]:.0%}")
    if abs(rel) < 5e-4:
        extra = alt.memory_gib - best.memory_gib
        return (f"same throughput, {extra:+.1f} GiB per GPU" if abs(extra) > 0.05 else "equivalent") + \
            (f"; more model parallelism (tp·pp = {alt.tp * alt.pp})" if alt.tp * alt.pp > best.tp * best.pp else "")
    txt = f"{rel:+.1%} throughput"
    return txt + (" (" + ", ".join(reasons) + ")" if reasons else "")


# --------------------------------------------------------------------------------------------- the plan
def plan_budget(*, flops: float | None = None, gpus: int | None = None, days: float | None = None,
                params: float | None = None, tokens: float | None = None, target_loss: float | None = None,
                gpu: str | GPU = "a100-80", law: str | ScalingLaw = DEFAULT_LAW, mfu: float | None = None,
                goodput: float = 0.9, price: float | None = None, seq_len: int = 4096,
                global_batch: int | None = None, vocab: int = 32000, gpus_per_node: int | None = None,
                max_gpus: int | None = None, deadline_days: float | None = None,
                inference_tokens: float | None = None, unique_tokens: float | None = None,
                compare: tuple[str, ...] | None = None, framework: str = "megatron",
                prices: dict | None = None) -> Plan:
    """Plan a pre-training run; see the module docstring for conventions. Returns a :class:`Plan`."""
    notes: list[str] = []
    for name, v in (("--flops", flops), ("--params", params), ("--tokens", tokens), ("--days", days),
                    ("--inference-tokens", inference_tokens), ("--unique-tokens", unique_tokens),
                    ("--target-loss", target_loss)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise ScalePlanError(f"{name} must be a positive, finite number, got {v}")
    lw = law if isinstance(law, ScalingLaw) else load_law(law)
    g = gpu if isinstance(gpu, GPU) else get_gpu(gpu, prices)
    gpn = gpus_per_node or g.gpus_per_node
    for name, v in (("--goodput", goodput),):
        if not (0 < v <= 1):
            raise ScalePlanError(f"{name} must be in (0, 1], got {v}")
    if mfu is not None and not (0 < mfu <= 1):
        raise ScalePlanError(f"--mfu must be in (0, 1], got {mfu}")
    if seq_len <= 0 or vocab <= 0:
        raise ScalePlanError("--seq-len and --vocab must be positive")
    if (gpus is None) != (days is None) and flops is None and params is None and tokens is None \
            and target_loss is None:
        raise ScalePlanError("--gpus and --days go together (the budget is then GPUs x days x peak x MFU x goodput)")
    if gpus is not None and gpus <= 0:
        raise ScalePlanError("--gpus must be a positive integer")
    if max_gpus is not None and gpus is not None and gpus > max_gpus:
        raise ScalePlanError(f"--gpus {gpus} exceeds --max-gpus {max_gpus}")
    if gpus is not None and deadline_days is not None:
        raise ScalePlanError("give --gpus or --deadline-days, not both")
    for name, v in (("--gpus-per-node", gpus_per_node), ("--max-gpus", max_gpus)):
        if v is not None and v < 1:
            raise ScalePlanError(f"{name} must be a positive integer, got {v}")
    if deadline_days is not None and not (deadline_days > 0 and math.isfinite(deadline_days)):
        raise ScalePlanError(f"--deadline-days must be a positive number, got {deadline_days}")
    if price is not None and not (price >= 0 and math.isfinite(price)):
        raise ScalePlanError(f"--price must be a price in $ per GPU-hour (>= 0), got {price}")
    peak = g.peak_tflops("bf16") * 1e12
    if not g.supports_bf16:
        notes.append(f"{g.name} has no bf16 tensor cores: using its fp16 peak ({g.peak_tflops('fp16'):g} TFLOP/s)")

    # ---- compute budget
    C_hw = None
    if gpus is not None and days is not None:
        # The default MFU depends on the model size, which depends on C: iterate to the consistent pair so the
        # plan's own time formula returns exactly --days.
        N_guess = params if params is not None else 1e10
        for _ in range(4):
            m0 = mfu if mfu is not None else default_mfu(g, N_guess, gpus)[0]
            C_hw = gpus * peak * m0 * goodput * days * SECONDS_PER_DAY
            if params is not None or tokens is not None or not lw.has_optimal:
                N_guess = params if params is not None else C_hw / (6 * tokens) if tokens else N_guess
                if params is not None or tokens is None:
                    break
            else:
                N_guess = float(lw.optimal(C_hw)[0])
    given = sum(x is not None for x in (flops, target_loss)) + (C_hw is not None)
    if given > 1:
        if flops is not None and C_hw is not None and abs(C_hw / flops - 1) > 0.05:
            raise ScalePlanError(f"--flops {flops:.3g} disagrees with --gpus {gpus} x --days {days:g} "
                                 f"({C_hw:.3g} FLOPs at this MFU/goodput); give one or the other")
        if target_loss is not None and (flops is not None or C_hw is not None):
            raise ScalePlanError("give --target-loss or a compute budget, not both")
    C = flops if flops is not None else C_hw
    if params is not None and tokens is not None:
        C6 = 6 * params * tokens
        if C is not None and abs(C6 / C - 1) > 0.05:
            raise ScalePlanError(f"--params x --tokens gives 6ND = {C6:.3g} FLOPs, which disagrees with the budget "
                                 f"{C:.3g}; drop one of them")
        C, N, D = C6, params, tokens
        notes.append("N and D fixed by --params/--tokens; the law only predicts the loss")
    elif target_loss is not None:
        C = compute_for_loss(lw, target_loss)
        N, D = (float(x) for x in lw.optimal(C))
        notes.append(f"compute-optimal budget for loss {target_loss:g} under {lw.name}")
    elif C is not None:
        if params is not None:
            N, D = params, C / (6 * params)
        elif tokens is not None:
            N, D = C / (6 * tokens), tokens
        else:
            if not lw.has_optimal:
                raise ScalePlanError(f"law {lw.name} has no compute-optimal allocation")
            N, D = (float(x) for x in lw.optimal(C))
    elif params is not None:
        C = optimal_for_params(lw, params)
        N, D = params, C / (6 * params)
        notes.append(f"D chosen so that {params:.3g} params is compute-optimal under {lw.name}")
    elif tokens is not None:
        C = optimal_for_tokens(lw, tokens)
        N, D = C / (6 * tokens), tokens
        notes.append(f"N chosen so that {tokens:.3g} tokens is compute-optimal under {lw.name}")
    else:
        raise ScalePlanError("give a budget: --flops C, or --gpus G --days T, or --params/--tokens, or "
                             "--target-loss L")
    if not (C > 0 and math.isfinite(C)):
        raise ScalePlanError("the compute budget must be a positive, finite number of FLOPs")
    if N > MAX_PARAMS:
        raise ScalePlanError(f"a budget of {C:.3g} FLOPs gives a {N:.3g}-parameter model, beyond the largest shape "
                             f"scaleplan plans ({MAX_PARAMS:.0e} params); give a smaller budget")
    if N < MIN_PARAMS or C < 1e15:
        raise ScalePlanError(f"a budget of {C:.3g} FLOPs gives a {N:.3g}-parameter model: too small for any "
                             "model scaleplan plans (need >= 2e7 params and 1e15 FLOPs)")
    if lw.form == "chinchilla" and lw.params.get("beta") == 0.28:
        notes.append("WARNING: Chinchilla's rounded Approach-3 constants give ~50-150 tokens/param; "
                     "epoch2024 or chinchilla-approach1 reproduce Chinchilla's ~20")
    extras = {}
    if inference_tokens is not None:
        ia = inference_aware(lw, C, inference_tokens)
        C_budget = C
        N, D = ia["params"], ia["tokens"]
        C = 6 * N * D
        extras["inference_aware"] = ia
        notes.append(f"inference-aware (Sardana et al. 2024): {N:.3g} params on {D:.3g} tokens reach the "
                     f"compute-optimal loss and save {ia['saving_fraction']:.1%} of lifetime FLOPs "
                     f"with {inference_tokens:.3g} inference tokens")
        if C > C_budget * 1.005:
            notes.append(f"WARNING: training this smaller model takes {C:.3g} FLOPs, {C / C_budget - 1:.0%} more "
                         f"than the {C_budget:.3g}-FLOP budget; the time and cost below are for {C:.3g} FLOPs "
                         "(inference then costs less over the model's lifetime)")
    if unique_tokens is not None:
        if D > unique_tokens:
            dc = data_constrained(lw, C, unique_tokens)
            N, D = dc["params"], dc["tokens"]
            extras["data_constrained"] = dc
            notes.append(f"data-constrained (Muennighoff et al. 2023): {dc['epochs']:.1f} epochs over "
                         f"{unique_tokens:.3g} unique tokens; {N:.3g} params")
            if dc["epochs"] > 16:
                notes.append("more than ~16 epochs: repeated data is worth almost nothing beyond this (R_D* = 15.4)")
        else:
            extras["data_constrained"] = {"epochs": D / unique_tokens, "note": "enough unique data"}
    loss = float(lw.loss(N, D)) if lw.has_loss else None
    at_optimum = (params is None and tokens is None and inference_tokens is None
                  and "data_constrained" not in extras or extras.get("data_constrained", {}).get("note"))
    interval = law_interval(lw, C, None if at_optimum else (N, D)) if lw.samples else {}
    if "epochs" in extras.get("data_constrained", {}) and "note" not in extras["data_constrained"]:
        loss = extras["data_constrained"]["loss"]  # repeated data is discounted (Muennighoff et al.)
        interval = {}
    if not compare:
        compare = tuple(n for n in ("epoch2024", "chinchilla-approach1", "deepseek2024") if n != lw.name)[:2]
    comparison = compare_laws(compare, C)

    # ---- shape
    tp_req = 8 if N >= 2e9 else 1
    pp_req = 8 if N >= 1e11 else 4 if N >= 2e10 else 2 if N >= 5e9 else 1
    shape = shape_for_params(N, vocab=vocab, tp=tp_req, pp=pp_req, name=f"planned-{N / 1e9:.3g}B")
    flops_attn = D * shape.flops_per_token(seq_len)

    # ---- batch and learning rate (DeepSeek LLM §3)
    b_tokens = 0.2920 * C ** 0.3271
    lr = 0.3118 * C ** -0.1250
    if global_batch is None:
        gb = max(1, int(round(b_tokens / seq_len)))
        gb = 2 ** int(round(math.log2(gb))) if gb > 1 else 1
        batch_note = f"global batch from DeepSeek's B_opt = 0.2920·C^0.3271 = {b_tokens:.3g} tokens"
    else:
        if global_batch <= 0:
            raise ScalePlanError("--global-batch must be a positive number of sequences")
        gb = global_batch
        batch_note = "global batch given"

    # ---- GPUs and layout
    m0, mfu_why = (mfu, "given") if mfu is not None else default_mfu(g, N, gpus)

    def gpus_for_days(target_days):
        n = C / (peak * m0 * goodput * target_days * SECONDS_PER_DAY)
        if mfu is None and n > 4096:  # the default MFU is lower at this scale: size the cluster with that one
            n = C / (peak * default_mfu(g, N, int(n) + 1)[0] * goodput * target_days * SECONDS_PER_DAY)
        return max(1, int(math.ceil(n / gpn)) * gpn) if n > gpn else max(1, 2 ** int(math.ceil(math.log2(max(n, 1)))))

    # Each data-parallel rank needs >= 1 sequence per step, and a pipeline of p stages >= p micro-batches, so
    # tp·pp·dp <= 2·global_batch·tp_max (the search keeps the batch within 2x): past this no layout can work.
    max_useful = 2 * gb * min(8, gpn)
    if gpus is not None:
        G, gpu_why = gpus, "given"
    elif deadline_days is not None:
        G, gpu_why = gpus_for_days(deadline_days), f"fewest GPUs (whole nodes) that finish within {deadline_days:g} days"
        if G > min(max_useful, MAX_GPUS):
            raise ScalePlanError(f"--deadline-days {deadline_days:g} would need about {G:,} x {g.name} (at MFU "
                                 f"{m0:.2f}), more than a global batch of {gb} sequences can keep busy; give a "
                                 "longer deadline or a larger --global-batch")
    else:
        G, gpu_why = gpus_for_days(DEFAULT_DAYS), f"default: whole nodes that finish in about {DEFAULT_DAYS:g} days"
        if G > MAX_GPUS:
            raise ScalePlanError(f"{C:.3g} FLOPs would need about {G:,} x {g.name} for {DEFAULT_DAYS:g} days; give "
                                 "--gpus or --deadline-days, or a smaller budget")
    if max_gpus is not None and G > max_gpus:
        gpu_why = f"capped by --max-gpus {max_gpus} (the {gpu_why.split(': ', 1)[-1]} needs {G:,})"
        G = max_gpus
    layouts = []
    tried = 0
    G0 = G
    while True:
        layouts = search_layouts(shape, g, G, gb, seq_len, m0, gpn, framework=framework)
        if layouts or gpus is not None:
            break
        tried += 1
        G = G * 2 if G < gpn else G + gpn * max(1, G // (8 * gpn))
        if (max_gpus is not None and G > max_gpus) or G > max_useful or tried > 60:
            break
    if G != G0 and layouts:
        gpu_why += f"; raised from {G0} until a layout fits"
    if not layouts:
        where = f"{G:,} x {g.name}" if gpus is not None else f"{G0:,} to {G:,} x {g.name}"
        raise ScalePlanError(f"no parallel layout of a {shape.params_total / 1e9:.3g}B model fits on {where} "
                             f"with global batch {gb} x {seq_len}: "
                             + ("give more GPUs (--gpus), " if gpus is not None else
                                "raise --max-gpus, " if max_gpus is not None else "")
                             + "a different --global-batch, or a GPU with more memory")
    best = layouts[0]
    if G > 4096 and mfu is None:
        m0, mfu_why = default_mfu(g, N, G)
    days_ = C / (G * peak * m0 * goodput) / SECONDS_PER_DAY
    if deadline_days is not None and days_ > deadline_days * 1.01:
        notes.append(f"WARNING: the plan takes {days_:.1f} days, past --deadline-days {deadline_days:g}"
                     + (f" (capped by --max-gpus {max_gpus})" if max_gpus is not None else ""))
    elif gpus is None and deadline_days is None and days_ > DEFAULT_DAYS * 1.5:
        notes.append(f"WARNING: the plan takes {days_:,.0f} days on {G:,} GPUs"
                     + (f" (capped by --max-gpus {max_gpus}; about {DEFAULT_DAYS:g} days needs more GPUs)"
                        if max_gpus is not None else ""))
    gpu_hours = days_ * 24 * G
    unit_price = price if price is not None else g.price_usd_per_hour
    cost = None if unit_price is None else gpu_hours * unit_price
    if unit_price is None:
        notes.append(f"no default price for {g.name}: pass --price to get a cost")
    mem = estimate_memory(shape, MemoryConfig(framework=framework, gpus=G, tp=best.tp, pp=best.pp, dp=best.dp,
                                              zero=best.zero_stage, sp=best.sp, seq_len=seq_len,
                                              micro_batch=best.micro_batch, grad_accum=best.grad_accum,
                                              recompute=best.recompute), g, suggest=False)
    alts = []
    for L in layouts[1:4]:
        m_alt = m0 * L.efficiency / best.efficiency
        alts.append({**L.to_dict(), "mfu": round(m_alt, 4), "days": days_ * best.efficiency / L.efficiency,
                     "why_lost": why_lost(best, L)})
    assumptions = {
        "mfu": m0, "mfu_source": mfu_why, "goodput": goodput, "gpus_source": gpu_why, "gpus_per_node": gpn,
        "peak_tflops_bf16": peak / 1e12, "time_formula": "days = C_6ND / (GPUs x peak x MFU x goodput) / 86400",
        "batch": batch_note,
        "batch_reference_tokens": {"deepseek_B_opt": b_tokens, "kaplan_B_crit_at_predicted_loss":
                                   (2.1e8 / loss ** (1 / 0.21)) if loss else None,
                                   "note": "Kaplan's B_crit uses WebText2 losses; shown for reference only"},
        "lr_source": "DeepSeek LLM eta_opt = 0.3118·C^-0.1250 (their data and batch)",
        "memory_profile": f"{framework} (layouts costed per GPU with scaleplan memory)",
        "layout_rules": "TP <= GPUs per node and divides heads; PP divides layers; ZeRO-2/3 only without PP; "
                        "tp·pp·dp = GPUs; device peak <= 95% of usable memory",
        "shape_rule": "Llama-like: head_dim 128, d_model/n_layers ~ 128, SwiGLU ffn = 256·ceil(8d/3/256), "
                      f"heads divisible by {tp_req}, layers by {pp_req}",
        "price_source": "--price" if price is not None else g.price_source,
        "law_conventions": dict(lw.conventions),
    }
    return Plan(law=lw.name, flops=C, params=float(N), tokens=float(D), loss=loss, interval=interval,
                comparison=comparison, shape=shape, flops_attn=float(flops_attn), layout=best, memory=mem,
                alternatives=alts, gpu=g, days=days_, gpu_hours=gpu_hours, cost_usd=cost, price=unit_price,
                mfu=m0, goodput=goodput, seq_len=seq_len, global_batch=best.global_batch, learning_rate=lr,
                notes=tuple(notes),
                assumptions=assumptions, extras=extras)
