"""The measurement runner: ``python -m scaling_planner.measure.runner`` reads a plan (JSON, from
scaling_planner.measure.measure_plan) on stdin, runs it on the local GPU and prints one JSON line on stdout: the
peaks, or {"error": ...}. Imported only in that subprocess (torch, transformers, PEFT, bitsandbytes live here).

Method (shared/data/h100_memory/SOURCE.md; docs/memory.md §14): the model is built with
``AutoModelForCausalLM.from_config`` directly on the GPU with random weights and ``use_cache=False``; inputs are
random token ids of shape (micro_batch, seq_len) used as their own labels (``model(input_ids=ids, labels=ids).loss``);
a plain loop of forward, backward, ``optimizer.step()``, ``zero_grad(set_to_none=True)``, three steps. ``amp`` = fp32
weights under ``torch.autocast("cuda", dtype=torch.bfloat16)``, ``bf16`` = bf16 weights, ``fp32`` = no autocast.
Peak stats are reset after the build; ``max_memory_allocated`` / ``max_memory_reserved`` over the steps and
total − free from ``mem_get_info`` at the end (includes the CUDA context).
QLoRA: the model is built in 16 bit on the CPU, every linear of the layers is swapped for a bitsandbytes NF4
``Linear4bit`` (double quantisation, compute dtype bf16) and moved to the GPU, where it is quantised; then PEFT's
``prepare_model_for_kbit_training`` (casts the other frozen 16-bit parameters to fp32, as the hf profile assumes,
docs/memory.md §11.2), with gradient checkpointing only under recompute full.
"""

from __future__ import annotations

import json
import sys


def _emit(d: dict) -> None:
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _build(plan: dict, torch, transformers):
    from transformers import AutoConfig, AutoModelForCausalLM

    hf = dict(plan["hf_config"])
    model_type = hf.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **hf)
    cfg.use_cache = False
    qlora = plan["method"] == "qlora"
    dtype = torch.bfloat16 if plan["precision"] == "bf16" or qlora else torch.float32
    kw = {"attn_implementation": plan["attention"]}
    device = "cpu" if qlora else "cuda"
    with torch.device(device):
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, **kw)
        except TypeError:  # transformers < 4.56 names it torch_dtype
            model = AutoModelForCausalLM.from_config(cfg, torch_dtype=dtype, **kw)
    full_rc = plan["recompute"] == "full"
    n_params = sum(p.numel() for p in model.parameters())  # before NF4 packs two weights per byte
    if qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(_to_nf4(model, torch), use_gradient_checkpointing=full_rc,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if full_rc:  # also for QLoRA, should prepare_model_for_kbit_training not have enabled it
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if plan["method"] != "full":
        from peft import LoraConfig, get_peft_model

        lo = plan["lora"]
        lc = LoraConfig(r=lo["rank"], lora_alpha=lo["alpha"], lora_dropout=lo["dropout"],
                        target_modules=lo["targets"], task_type="CAUSAL_LM")
        model = get_peft_model(model, lc, autocast_adapter_dtype=lo["adapter_dtype"] == "fp32")
        if lo["adapter_dtype"] == "bf16":  # PEFT only ever upcasts adapters; on an fp32 base they would stay fp32
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.data = p.data.to(torch.bfloat16)
        if full_rc:
            model.enable_input_require_grads()
    model.train()
    return model, n_params


def _to_nf4(model, torch):
    """Swap every linear inside the decoder layers for bitsandbytes NF4 Linear4bit and move the model to the GPU."""
    import bitsandbytes as bnb

    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.Linear) and ".layers." in f"{name}.{child_name}.":
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, quant_type="nf4", compress_statistics=True)
                q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4",
                                             compress_statistics=True)
                if child.bias is not None:
                    q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
                setattr(mod, child_name, q)
    for p in model.parameters():
        p.requires_grad_(False)
    # what transformers sets when it loads with a 4-bit quantization config: PEFT's prepare_model_for_kbit_training
    # and its LoRA dispatch read it (peft/utils/other.py, tuners/lora/bnb.py)
    model.is_loaded_in_4bit = True
    return model.to("cuda")


def _optimizer(plan: dict, params, torch):
    name = plan["optimizer"]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-5)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-5)
    if name == "sgd-momentum":
        return torch.optim.SGD(params, lr=1e-5, momentum=0.9)
    import bitsandbytes as bnb

    return (bnb.optim.PagedAdamW8bit if name == "paged-adamw-8bit" else bnb.optim.AdamW8bit)(params, lr=1e-5)


def run(plan: dict) -> dict:
    try:
        import torch
    except ImportError:
        return {"error": "PyTorch is not installed in this Python: pip install 'scaleplan[measure]'"}
    if not torch.cuda.is_available():
        return {"error": "no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)"}
    try:
        import transformers
    except ImportError:
        return {"error": "transformers is not installed: pip install 'scaleplan[measure]'"}
    versions = _versions()
    try:
        model, n_params = _build(plan, torch, transformers)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = _optimizer(plan, params, torch)
        torch.cuda.synchronize()
        after_load = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        vocab = model.config.vocab_size if hasattr(model, "config") else plan["hf_config"]["vocab_size"]
        ids = torch.randint(0, vocab, (plan["micro_batch"], plan["seq_len"]), device="cuda")
        for _ in range(plan["steps"]):
            if plan["precision"] == "amp":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(input_ids=ids, labels=ids).loss
            else:
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
    except torch.cuda.OutOfMemoryError:
        return {"error": f"out of memory on {torch.cuda.get_device_name()} (the configuration does not fit)"}
    except ImportError as e:
        return {"error": f"{e.name or e} is not installed: pip install 'scaleplan[measure]'"}
    return {"max_allocated_bytes": torch.cuda.max_memory_allocated(),
            "max_reserved_bytes": torch.cuda.max_memory_reserved(), "device_used_bytes": total - free,
            "after_load_bytes": after_load, "params_total": n_params,
            "gpu": torch.cuda.get_device_name(), "steps": plan["steps"], **versions}


def main() -> int:
    try:
        plan = json.loads(sys.stdin.read())
    except json.JSONDecodeError as e:
        _emit({"error": f"bad plan on stdin ({e.msg})"})
        return 2
    out = run(plan)
    _emit(out)
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
