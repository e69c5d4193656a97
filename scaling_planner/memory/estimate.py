"""estimate_memory: validate the config, estimate training (or inference) memory, add what-ifs when it does not fit.

Training is computed step by step in :mod:`.training` (activations in :mod:`.activations`), inference in
:mod:`.inference`; docs/memory.md §7 describes phases, peak kinds and the fit check.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ScalePlanError
from ..model import ModelShape
from ..units import GIB
from . import result, states, training
from .activations import logit_bytes_per_element
from .config import MemoryConfig, validate
from .inference import inference_estimate
from .profiles import applicable_notes, profile
from .result import MemoryEstimate

CPU_BUFFER_FACTOR = 1.5  # DeepSpeed additional_buffer_factor (stage_1_and_2.py @ edaa722; docs/memory.md §3)


# ---------------------------------------------------------------------------- entry point
def estimate_memory(shape: ModelShape, config: MemoryConfig | None = None, gpu=None,
                    suggest: bool = True) -> MemoryEstimate:
    """Per-GPU peak memory for training (or inference with ``config.inference``) of ``shape`` under ``config``;
    checked against ``gpu`` (a hardware.GPU) when given, with what-if suggestions when it does not fit and
    ``suggest``."""
    c = (config or MemoryConfig()).resolved()
    validate(shape, c)
    if gpu is not None and states.PRECISIONS[c.precision].fp8 and not gpu.fp8_tflops:
        raise ScalePlanError(f"precision fp8 needs FP8 tensor cores, which {gpu.name} lacks: use an H100/H200/B200-class "
                             "GPU, or precision mixed-fp32-grads", param="precision")
    if c.inference:
        est = inference_estimate(shape, c, gpu)
    else:
        est = _training_estimate(shape, c, gpu)
    if suggest and est.fits is False:
        from .whatif import suggestions

        est = replace(est, suggestions=tuple(suggestions(shape, c, gpu, est)))
    return est


def _training_estimate(shape: ModelShape, c: MemoryConfig, gpu) -> MemoryEstimate:
    prof = profile(c.framework)
    st, sb, adapted = training.train_peak(shape, c, prof)
    # paged optimizers (docs/memory.md §1): their states are in CUDA unified memory, outside torch's allocator, so they
    # leave allocated and reserved and come back in device
    paged = st.paged
    alloc = st.peak - paged
    reserved, device = result.reserved_and_device(alloc, c)
    comp = dict(st.breakdown)
    comp["overhead"] = result.overhead_shown(alloc, reserved, device, c.peak_kind)
    device += paged
    if paged:
        comp["optimizer"] -= paged
        comp["paged_optimizer"] = paged if c.peak_kind == "device" else 0.0
    gpus_node = gpu.gpus_per_node if gpu is not None else 8
    cpu = st.states.cpu
    cpu_node = cpu * min(c.gpus, gpus_node) * (CPU_BUFFER_FACTOR if cpu else 1.0)
    full = c.method == "full"
    params_trainable = shape.params_total if full else int(round(
        shape.n_layers * training.lora_params_per_layer(shape, c.lora_rank, adapted)))
    model_states = {"weights": st.states.weights, "gradients": st.states.gradients, "optimizer": st.states.optimizer}
    prof_weights = sb.weight if full else (states.NF4_DQ_BYTES if c.method == "qlora" else sb.weight)
    assumptions = {
        "framework": c.framework, "precision": c.precision,
        "bytes_per_param": {"weights": prof_weights, "gradients": sb.grad if full else None,
                            "optimizer_incl_master": sb.optimizer if full else None,
                            "lora_adapter_w_g_opt": None if full else list(sb.adapter)},
        "activation_bytes": states.PRECISIONS[c.precision].activation, "optimizer": c.optimizer,
        "zero_stage": c.zero, "sharded": states.sharded(c.zero),
        "layout": {"gpus": c.gpus, "tp": c.tp, "pp": c.pp, "dp": c.dp, "sp": c.sp},
        "offload": c.offload, "seq_len": c.seq_len, "micro_batch": c.micro_batch, "grad_accum": c.grad_accum,
        "recompute": c.recompute, "attention": c.attention, "dropout": c.dropout, "chunked_ce": c.chunked_ce,
        "optimizer_in_bwd": c.optimizer_in_bwd, "activation_offload": c.activation_offload,
        "logit_bytes_per_element": logit_bytes_per_element(c, prof),
        "method": c.method, "lora": None if full else {"rank": c.lora_rank, "targets": sorted(adapted),
                                                        "dropout": c.lora_dropout},
        "params_on_rank": int(st.states.params), "trainable_on_rank": int(st.states.trainable),
        "reported_rank": f"{st.label} pipeline stage",
        "peak_phase": st.phase, "grads_alive_in_forward": training.grads_alive_in_forward(c, prof),
        "activation_factor": prof.activation_factor,
        "model_states_gib": {k: v / GIB for k, v in model_states.items()},
        "cuda_context_gib": c.cuda_context_gib, "fragmentation": c.fragmentation, "peak_kind": c.peak_kind,
        "units": "GiB = 2^30 bytes", "profile_notes": applicable_notes(prof, shape, c),
    }
    if states.PRECISIONS[c.precision].fp8:
        assumptions["fp8"] = {
            "recipe": "Transformer Engine delayed scaling (Megatron's default fp8_recipe), Hopper FP8 layout",
            "gemm_weights_on_rank": int(training.fp8_gemm_weights(shape, c)),
            "weight_copy_bytes": states.FP8_WEIGHT_COPY_BYTES, "gemm_input_bytes": states.FP8_ACTIVATION_BYTES,
            "note": "fp8_weights: the FP8 copy (row-wise + transpose) of every layer linear's weight, cached across "
                    "micro-batches and steps; GEMM inputs saved in FP8 (the attention output also in 16 bit for the "
                    "attention kernel); bf16 weights, fp32 main grads, master and Adam states as mixed-fp32-grads; "
                    "amax/scale buffers negligible (docs/memory.md §13)"}
    if c.optimizer in states.PAGED_STATE_BYTES:
        assumptions["note_paged"] = ("paged optimizer states live in CUDA unified memory (cudaMallocManaged): on the "
                                     "device once touched, outside torch's allocator — counted in device, not in "
                                     "allocated/reserved; the driver can evict them to CPU under pressure")
        assumptions["paged_optimizer_gib"] = paged / GIB
    return MemoryEstimate(shape=shape, config=c, breakdown=comp, allocated=alloc, reserved=reserved, device=device,
                          cpu_bytes=cpu_node, params_total=shape.params_total, params_trainable=params_trainable,
                          params_active=shape.params_active, phases={k: v - paged for k, v in st.phases.items()},
                          peak_phase=st.phase,
                          rank=st.label, assumptions=assumptions, gpu_name=gpu.name if gpu is not None else None,
                          gpu_memory_gib=gpu.memory_gib if gpu is not None else None, model_states=model_states)

