"""``scaleplan memory --measure``: run a few real training steps of the estimated configuration on the local GPU and
read its peaks (docs/memory.md §14).

This module is pure Python (no torch import): it turns a ModelShape + MemoryConfig into a *plan* (a JSON-able dict)
or refuses the configs a one-GPU PyTorch loop cannot reproduce, runs :mod:`scaling_planner.measure.runner` in a
subprocess (``python -m scaling_planner.measure.runner`` with the plan on stdin; torch, transformers, PEFT and
bitsandbytes are imported there only: ``pip install 'scaleplan[measure]'``), and parses the one JSON line it prints.
The method is that of the H100 measurements the estimator is checked against (shared/data/h100_memory/SOURCE.md):
``from_config`` with random weights on the GPU, random token ids as their own labels, three steps, peak stats reset
after the build, ``max_memory_allocated`` / ``max_memory_reserved`` and ``mem_get_info``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from ..errors import ScalePlanError
from ..units import GIB

STEPS = 3  # SOURCE.md: three training steps
TIMEOUT_S = 1800  # a cold build of an 8B model plus three steps stays far below this
INSTALL_HINT = "pip install 'scaleplan[measure]'"
RUNNER = "scaling_planner.measure.runner"

PRECISIONS = {"amp": "amp", "bf16": "bf16", "fp32": "fp32"}  # scaleplan precision -> runner (SOURCE.md)
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "sgd", "sgd-momentum")
ATTENTION = {"flash": "sdpa", "eager": "eager"}  # scaleplan attention -> transformers attn_implementation
RECOMPUTE = ("none", "full")  # full: gradient_checkpointing_enable(use_reentrant=False)
# scaleplan LoRA target -> the Llama-family module name PEFT adapts
LORA_MODEL_TYPES = ("llama", "mistral", "qwen2", "gemma")  # families whose linears carry LORA_MODULES' names
LORA_MODULES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
                "down": "down_proj"}


@dataclass(frozen=True)
class Measured:
    """Peaks read on the GPU (bytes) and the library versions that produced them."""

    allocated: float
    reserved: float
    device: float
    after_load: float
    params_total: int
    torch: str
    transformers: str
    gpu_name: str
    extra: dict

    def to_dict(self, est=None) -> dict:
        """JSON ``measured``; with ``est`` (the MemoryEstimate) also each estimate's error vs the measurement."""
        d = {"allocated_gib": round(self.allocated / GIB, 4), "reserved_gib": round(self.reserved / GIB, 4),
             "device_gib": round(self.device / GIB, 4), "after_load_gib": round(self.after_load / GIB, 4),
             "params_total": self.params_total, "torch": self.torch, "transformers": self.transformers,
             "gpu": self.gpu_name, **self.extra}
        if est is not None:
            d["error_pct"] = {k: round(100 * (e / m - 1), 2) if m else None for k, e, m in self.pairs(est)}
        return d

    def pairs(self, est) -> list[tuple[str, float, float]]:
        """(kind, estimated bytes, measured bytes) for allocated, reserved and device."""
        return [("allocated", est.allocated, self.allocated), ("reserved", est.reserved, self.reserved),
                ("device", est.device, self.device)]


def _refuse(what: str, param) -> ScalePlanError:
    return ScalePlanError(f"--measure runs one GPU with a plain PyTorch loop and cannot reproduce {what}",
                          param=param)


def measure_plan(shape, config, hf_config: dict | None = None, steps: int = STEPS) -> dict:
    """The runner's plan for ``shape`` under ``config`` (a MemoryConfig), or a one-line ScalePlanError for what the
    runner cannot reproduce: several GPUs, ZeRO, TP/PP, offload, the megatron framework, inference, precisions
    other than amp/bf16/fp32, other optimizers, selective recompute, chunked CE, hidden dropout, MoE.
    ``hf_config``: the config.json the shape came from (used as is); else a Llama config is built from the shape."""
    c = config.resolved()
    if c.framework == "megatron":
        raise _refuse("framework megatron (Transformer Engine, distributed optimizer): use hf, generic or "
                      "torchtune", "framework")
    checks = [
        (c.gpus > 1 or c.dp > 1, "several GPUs: use gpus 1", "gpus"),
        (c.zero != 0, f"ZeRO stage {c.zero}: use zero 0", "zero"),
        (c.tp > 1 or c.pp > 1 or c.sp, "tensor or pipeline parallelism: use tp 1, pp 1", ("tp", "pp")),
        (c.offload != "none", "CPU offload: use offload none", "offload"),
        (c.inference, "inference: measure training", "inference"),
        (c.precision not in PRECISIONS, f"precision {c.precision}: use {', '.join(PRECISIONS)}", "precision"),
        (c.optimizer not in OPTIMIZERS, f"optimizer {c.optimizer}: use {', '.join(OPTIMIZERS)}", "optimizer"),
        (c.recompute not in RECOMPUTE, f"recompute {c.recompute}: use none or full", "recompute"),
        (c.chunked_ce, "chunked cross-entropy: drop chunked_ce", "chunked_ce"),
        (c.dropout > 0, "hidden dropout: use dropout 0", "dropout"),
        (c.grad_accum > 1, "gradient accumulation: use grad_accum 1", "grad_accum"),
        (getattr(c, "optimizer_in_bwd", False), "the optimizer step in backward (torchtune): drop optimizer_in_bwd",
         "optimizer_in_bwd"),
        (getattr(c, "activation_offload", False), "activation offloading (torchtune): drop activation_offload",
         "activation_offload"),
        (c.method != "full" and (hf_config or {}).get("model_type", "llama") not in LORA_MODEL_TYPES,
         "LoRA on this model family (its linears are not named q_proj ... down_proj): use a Llama-family model "
         "(llama, mistral, qwen2, gemma, phi3)", "method"),
        (c.method != "full" and shape.n_experts > 0, "LoRA on MoE experts (the runner adapts q_proj ... down_proj "
         "only): measure a full fine-tune", "method"),
        (shape.n_experts > 0 and hf_config is None, "an MoE shape without the model's config.json: give hf_config",
         "hf_config"),
    ]
    for bad, what, param in checks:
        if bad:
            raise _refuse(what, param)
    if hf_config is None:
        if not shape.gated_mlp or shape.norm != "rmsnorm" or shape.learned_pos or shape.bias != "none":
            raise _refuse(f"the shape of {shape.name} from its dimensions alone (only Llama-like shapes are built "
                          "that way): give hf_config (the model's config.json)", "hf_config")
        hf_config = llama_config(shape)
    plan = {"hf_config": hf_config, "precision": PRECISIONS[c.precision], "optimizer": c.optimizer,
            "attention": ATTENTION[c.attention], "recompute": c.recompute, "seq_len": c.seq_len,
            "micro_batch": c.micro_batch, "steps": steps, "method": c.method}
    if c.method != "full":
        plan["lora"] = {"rank": c.lora_rank, "alpha": 2 * c.lora_rank, "dropout": c.lora_dropout,
                        "targets": [LORA_MODULES[t] for t in c.lora_targets if t in LORA_MODULES],
                        "adapter_dtype": c.lora_dtype or "fp32"}
    return plan


def llama_config(shape) -> dict:
    """A transformers LlamaConfig dict with ``shape``'s dimensions (random init; dropout 0; no KV cache)."""
    return {"model_type": "llama", "vocab_size": shape.vocab, "hidden_size": shape.d_model,
            "intermediate_size": shape.ffn, "num_hidden_layers": shape.n_layers,
            "num_attention_heads": shape.n_heads, "num_key_value_heads": shape.n_kv_heads,
            "head_dim": shape.head_dim, "tie_word_embeddings": shape.tied_embeddings, "attention_dropout": 0.0,
            "max_position_embeddings": 131072, "use_cache": False}


def runner_command(python: str | None = None) -> list[str]:
    """The subprocess command: ``python -m scaling_planner.measure.runner`` (the plan goes on stdin)."""
    return [python or sys.executable, "-m", RUNNER]


def check_available(python: str | None = None) -> None:
    """Raise a one-line ScalePlanError when torch is missing (checked without importing it when ``python`` is this
    interpreter; a different ``python`` is checked by the runner itself)."""
    if python is None or python == sys.executable:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise ScalePlanError(f"--measure needs PyTorch with CUDA, transformers and PEFT: {INSTALL_HINT}")


def run_measure(plan: dict, python: str | None = None, timeout: float = TIMEOUT_S) -> Measured:
    """Run the runner on ``plan`` in a subprocess and return what it measured; ScalePlanError (one line) when torch
    or a CUDA GPU is missing, the run fails, or it prints no result."""
    check_available(python)
    try:
        proc = subprocess.run(runner_command(python), input=json.dumps(plan), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ScalePlanError(f"--measure: the run took longer than {timeout:.0f} s and was stopped") from None
    except OSError as e:
        raise ScalePlanError(f"--measure: cannot start {runner_command(python)[0]}: {e.strerror or e}") from None
    return parse_result(proc.stdout, proc.returncode, proc.stderr)


def parse_result(stdout: str, returncode: int = 0, stderr: str = "") -> Measured:
    """The runner's last JSON line on stdout as a Measured, or a one-line ScalePlanError for its error, or for no
    result (the last line of stderr, e.g. a crash)."""
    line = next((ln for ln in reversed(stdout.strip().splitlines()) if ln.startswith("{")), None)
    try:
        d = json.loads(line) if line else None
    except json.JSONDecodeError:
        d = None
    if not isinstance(d, dict):
        tail = (stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ScalePlanError(f"--measure: the runner returned no result (exit {returncode}): {tail}")
    if "error" in d:
        raise ScalePlanError(f"--measure: {d['error']}")
    try:
        return Measured(allocated=float(d["max_allocated_bytes"]), reserved=float(d["max_reserved_bytes"]),
                        device=float(d["device_used_bytes"]), after_load=float(d.get("after_load_bytes", 0.0)),
                        params_total=int(d.get("params_total", 0)), torch=str(d["torch"]),
                        transformers=str(d["transformers"]), gpu_name=str(d.get("gpu", "")),
                        extra={k: d[k] for k in ("peft", "bitsandbytes", "steps") if k in d})
    except (KeyError, TypeError, ValueError) as e:
        raise ScalePlanError(f"--measure: the runner's result lacks a field ({e})") from None
