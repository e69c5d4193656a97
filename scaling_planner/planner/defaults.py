"""Every default the planner assumes, in one place, each with its source (docs/planning.md).

Like EleutherAI's ``calc_transformer_mem.py`` DEFAULTS: change a number here and every step that uses it follows.
Functions in this module are the formulas those defaults feed (the MFU table with its corrections, DeepSeek's batch
and learning-rate laws); the planner calls them through this module so that a test can replace them.
"""

from __future__ import annotations

from ..hardware import GPU
from ..memory.fit import FIT_HEADROOM

# ---- laws ------------------------------------------------------------------------------------------------------
DEFAULT_LAW = "epoch2024"  # Besiroglu et al. 2024 refit of Chinchilla Approach 3 (docs/planning.md §2.1)
COMPARE_LAWS = ("epoch2024", "chinchilla-approach1", "deepseek2024")  # the two of these that are not the chosen law
REPETITION_LAW = "muennighoff2023"  # whose R_D*, R_N* discount repeated epochs (docs/planning.md §2.6)

# ---- sizes the planner builds (docs/planning.md §2.4) -----------------------------------------------------------
MIN_PARAMS = 2e7  # the smallest Llama-like shape the planner builds (1 layer, d_model 256: 17M with vocab 32k)
MAX_PARAMS = 4e13  # the largest Llama-like shape the planner builds (d_model 65,536, ~1,000 layers)
MIN_FLOPS = 1e15  # smaller budgets train no model the planner builds
MAX_GPUS = 1_000_000  # larger clusters than any built: a plan needing more is an input error

# ---- time (docs/planning.md §5) ---------------------------------------------------------------------------------
SECONDS_PER_DAY = 86_400.0
DEFAULT_DAYS = 30.0  # scaleplan: target wall-clock when neither gpus nor deadline_days is given (§4.4)
GOODPUT = 0.9  # scaleplan: fraction of wall-clock in useful steps (restarts, evals, downtime; §5.1)

# MFU: step MFU of the best layout, 6N FLOPs per token against the dense BF16 peak (docs/planning.md §5.1; the
# published ranges these sit in are tabulated there: llm-foundry, Megatron-LM, Narayanan et al. 2021).
MFU_DEFAULTS = {"a100": 0.45, "h100": 0.40}  # by GPU family (data/gpus.csv ``family``)
MFU_FALLBACK = 0.40  # any other family, printed as "assumed"
MFU_SMALL_MODEL = (3e9, 0.05)  # below this many params: MFU lower by this much (§5.1)
MFU_LARGE_CLUSTER = (4096, 0.05)  # above this many GPUs: MFU lower by this much (§5.1)

# ---- batch size and learning rate: DeepSeek LLM §3.1 (arXiv:2401.02954; docs/planning.md §3.2-3.3) ---------------
DEEPSEEK_BATCH = (0.2920, 0.3271)  # B_opt = k·C^e tokens
DEEPSEEK_LR = (0.3118, -0.1250)  # eta_opt = k·C^e

# ---- layout search (docs/planning.md §4.1-4.2) ------------------------------------------------------------------
MEMORY_HEADROOM = FIT_HEADROOM  # the one fit rule (memory.fit, docs/memory.md §7.1): device peak <= 95% of the GPU
TP_DEGREES = (1, 2, 4, 8)  # tensor parallelism stays inside a node (Narayanan et al. 2021 §3, Takeaway #1)
MAX_PP = 64  # pipeline stages searched
MICRO_BATCHES = (1, 2, 4, 8)
RECOMPUTE_MODES = ("none", "full")
BATCH_TOLERANCE = 2.0  # a layout's global batch stays within [1/2, 2] x the target


def default_mfu(gpu: GPU, params: float, gpus: int | None) -> tuple[float, str]:
    """Default step MFU (fraction, 6N counting, dense BF16 peak) for ``gpu`` training a ``params``-parameter model on
    ``gpus`` GPUs, and the reason in words (docs/planning.md §5.1)."""
    base = MFU_DEFAULTS.get(gpu.family, MFU_FALLBACK)
    why = f"{gpu.family} default {base:.2f} (docs/planning.md §5.1)" if gpu.family in MFU_DEFAULTS else \
        f"no published range for {gpu.family}; assumed {base:.2f}"
    small, small_drop = MFU_SMALL_MODEL
    if params < small and small_drop:
        base -= small_drop
        why += f", -{small_drop:.2f} below {small / 1e9:g}B params"
    large, large_drop = MFU_LARGE_CLUSTER
    if gpus and gpus > large and large_drop:
        base -= large_drop
        why += f", -{large_drop:.2f} above {large:,} GPUs"
    return base, why


def deepseek_batch_tokens(flops: float) -> float:
    """DeepSeek LLM's optimal global batch B_opt = 0.2920·C^0.3271 in tokens, C in FLOPs (docs/planning.md §3.2)."""
    k, e = DEEPSEEK_BATCH
    return k * flops ** e


def deepseek_learning_rate(flops: float) -> float:
    """DeepSeek LLM's optimal learning rate eta_opt = 0.3118·C^-0.1250, C in FLOPs (docs/planning.md §3.3)."""
    k, e = DEEPSEEK_LR
    return k * flops ** e
