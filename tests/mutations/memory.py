"""Mutations of the memory mechanisms; see tests/mutations/__init__.py.

Each stubs out one mechanism of scaling_planner.memory: a profile fact (set to a neutral or another stack's value),
an activation component (returning 0), a ZeRO stage's sharding, offload, a bytes-per-parameter constant, the
allocator/CUDA-context overhead, recomputation, the 1F1B in-flight count, a buffer.
"""

from __future__ import annotations

from dataclasses import replace

from . import Mutation

TESTS = ("tests/test_memory_mechanisms.py", "tests/test_memory.py")


def _fact(profile: str, fact: str, value):
    def apply(mp):
        from scaling_planner.memory import profiles

        mp.setitem(profiles.PROFILES, profile, replace(profiles.PROFILES[profile], **{fact: value}))

    return apply


def _zero(module: str, func: str):
    def apply(mp):
        import importlib

        mp.setattr(importlib.import_module(f"scaling_planner.memory.{module}"), func, lambda *a, **k: 0.0)

    return apply


def _setattr(module: str, name: str, value_fn):
    """Set scaling_planner.memory.<module>.<name> to value_fn(module) (value_fn gets the module, for originals)."""
    def apply(mp):
        import importlib

        mod = importlib.import_module(f"scaling_planner.memory.{module}")
        mp.setattr(mod, name, value_fn(mod))

    return apply


def _zero_stage_not_sharding(part: str):
    def apply(mp):
        from scaling_planner.memory import states

        mp.setitem(states.ZERO_SHARDS_FROM, part, 4)  # no stage reaches 4: this state is never sharded

    return apply


def _selective_ignored(mod):
    orig = mod.eager_attention_scores

    def scores(shape, c, prof, trainable, adapted):
        return orig(shape, replace(c, recompute="none") if c.recompute == "selective" else c, prof, trainable, adapted)

    return scores


def _full_recompute_ignored(mod):
    return lambda shape, c, per_layer: shape.n_layers // c.pp * per_layer


def _no_fragmentation(mod):
    from scaling_planner.units import GIB

    return lambda alloc, c: (alloc, alloc + c.cuda_context_gib * GIB)


def _no_cuda_context(mod):
    return lambda alloc, c: (alloc * (1 + c.fragmentation), alloc * (1 + c.fragmentation))


def _fp8_as_bf16(func: str):
    """activations.<func> computed as under mixed-fp32-grads even when the precision is fp8: that tensor group's
    FP8 handling (docs/memory.md §13.2) is stubbed out."""
    def value(mod):
        orig = getattr(mod, func)

        def f(shape, c, *rest):
            return orig(shape, replace(c, precision="mixed-fp32-grads") if c.precision == "fp8" else c, *rest)

        return f

    return value


def _fp8_router_input(mod):
    orig = mod.mlp_input

    def f(shape, c, *rest):  # the MoE layer's norm output saved in FP8 as in a dense MLP (the router keeps 16 bit)
        return orig(replace(shape, n_experts=0, top_k=0), c, *rest) if c.precision == "fp8" else orig(shape, c, *rest)

    return f


def _fp8_copies_transient(mod):
    orig = mod.phases

    def f(*a, **k):  # FP8 weight copies alive only at the end of forward (not cached across steps)
        out = orig(*a, **k)
        for ph in ("backward_end", "optimizer_step"):
            if "fp8_weights" in out[ph]:
                out[ph]["fp8_weights"] = 0.0
        return out

    return f


# profile -> fact -> the value the mutation sets (neutral, or the other stacks' value where it is already neutral)
_FACT_MUTATIONS = {
    "generic": dict(default_precision="bf16", norm_extra_bytes=4.0, gated_mlp_saved=3, logits_bytes=0.0,
                    eager_score_bytes=0.0, adapter_bytes=(2, 2, 4), activation_factor=1.05),
    "hf": dict(default_precision="mixed", norm_extra_bytes=0.0, gated_mlp_saved=3, logits_bytes=0.0,
               eager_score_bytes=0.0, adapter_bytes=(2, 2, 4), activation_factor=1.05),
    "torchtune": dict(default_precision="mixed", norm_extra_bytes=0.0, gated_mlp_saved=3, logits_bytes=0.0,
                      eager_score_bytes=0.0, adapter_bytes=(4, 4, 8), activation_factor=1.05),
    "megatron": dict(default_precision="mixed", norm_extra_bytes=4.0, gated_mlp_saved=2, logits_bytes=0.0,
                     eager_score_bytes=0.0, adapter_bytes=(2, 2, 4), activation_factor=1.0),
    "deepspeed": dict(default_precision="bf16", norm_extra_bytes=0.0, gated_mlp_saved=3, logits_bytes=0.0,
                      eager_score_bytes=0.0, adapter_bytes=(2, 2, 4), activation_factor=1.05),
}
_BOOLEAN_FACTS = ("opt_temp", "grads_persistent", "ddp_bucket_copy", "ds_buckets", "fp32_grad_partition")


def _profile_mutations() -> list[Mutation]:
    from scaling_planner.memory import PROFILES

    out = []
    for prof, facts in _FACT_MUTATIONS.items():
        for fact, value in facts.items():
            out.append(Mutation(f"memory.profile.{prof}.{fact}", f"{prof} profile: {fact} = {value!r}",
                                _fact(prof, fact, value), TESTS))
        for fact in _BOOLEAN_FACTS:
            value = not getattr(PROFILES[prof], fact)
            out.append(Mutation(f"memory.profile.{prof}.{fact}", f"{prof} profile: {fact} flipped to {value}",
                                _fact(prof, fact, value), TESTS))
    return out


_LAYER_COMPONENTS = ("norm_inputs", "attention_input", "mlp_input", "dropout_masks", "qkv_saved", "attention_output",
                     "flash_softmax_stats", "eager_attention_scores", "mlp_intermediates", "lora_intermediates")
_STAGE_COMPONENTS = ("full_recompute_checkpoint", "embedding_dropout_mask", "final_norm_and_head_inputs", "logits")
_BUFFERS = ("autocast_copies", "zero3_gather_forward", "zero3_gather_backward", "qlora_dequant_buffer",
            "ddp_bucket_copy", "deepspeed_buckets", "optimizer_step_temporary")

MUTATIONS: list[Mutation] = [
    *_profile_mutations(),
    *[Mutation(f"memory.activations.{f}", f"activation component {f} returns 0", _zero("activations", f), TESTS)
      for f in _LAYER_COMPONENTS + _STAGE_COMPONENTS],
    Mutation("memory.activations.recompute_full_ignored", "full recompute keeps every layer's activations",
             _setattr("activations", "layers_on_stage", _full_recompute_ignored), TESTS),
    Mutation("memory.activations.recompute_selective_ignored", "selective recompute keeps the eager s² scores",
             _setattr("activations", "eager_attention_scores", _selective_ignored), TESTS),
    Mutation("memory.activations.in_flight_1", "1F1B first stage holds 1 micro-batch, not min(p, m)",
             _setattr("activations", "in_flight_microbatches", lambda mod: lambda c: 1), TESTS),
    *[Mutation(f"memory.zero.{part}_not_sharded", f"ZeRO stage {stage} does not shard the {part}",
               _zero_stage_not_sharding(part), TESTS)
      for part, stage in (("optimizer", 1), ("gradients", 2), ("weights", 3))],
    Mutation("memory.offload.ignored", "CPU offload moves nothing off the GPU",
             _setattr("training", "offload_states", lambda mod: lambda ms, c, prof: ms), TESTS),
    Mutation("memory.states.nf4_2_bytes", "NF4 weights counted at 2 B/param",
             _setattr("states", "NF4_DQ_BYTES", lambda mod: 2.0), TESTS),
    Mutation("memory.states.8bit_state_4_bytes", "8-bit optimizer states counted at 4 B",
             _setattr("states", "BNB_8BIT_STATE", lambda mod: 4.0), TESTS),
    Mutation("memory.overhead.no_fragmentation", "reserved = allocated (fragmentation ignored)",
             _setattr("result", "reserved_and_device", _no_fragmentation), TESTS),
    Mutation("memory.overhead.no_cuda_context", "device = reserved (CUDA context ignored)",
             _setattr("result", "reserved_and_device", _no_cuda_context), TESTS),
    *[Mutation(f"memory.buffers.{f}", f"buffer {f} returns 0", _zero("training", f), TESTS) for f in _BUFFERS],
    # FP8, Transformer Engine (docs/memory.md §13)
    Mutation("memory.fp8.weight_copies_zero", "no FP8 weight copies under precision fp8",
             _zero("training", "fp8_weight_copies"), TESTS),
    Mutation("memory.fp8.weight_copy_1_byte", "FP8 weight copies counted row-wise only (1 B, no transpose)",
             _setattr("states", "FP8_WEIGHT_COPY_BYTES", lambda mod: 1), TESTS),
    Mutation("memory.fp8.copies_not_cached", "FP8 weight copies freed after the forward pass",
             _setattr("training", "phases", _fp8_copies_transient), TESTS),
    Mutation("memory.fp8.gemm_input_2_bytes", "FP8 GEMM inputs saved at 2 B", _setattr(
        "states", "FP8_ACTIVATION_BYTES", lambda mod: 2), TESTS),
    *[Mutation(f"memory.fp8.{f}_bf16", f"{f} ignores FP8 (computed as bf16)", _setattr("activations", f,
                                                                                    _fp8_as_bf16(f)), TESTS)
      for f in ("attention_input", "mlp_input", "attention_output", "mlp_intermediates")],
    Mutation("memory.fp8.moe_router_input_fp8", "MoE norm output saved in FP8 (router's 16-bit copy ignored)",
             _setattr("activations", "mlp_input", _fp8_router_input), TESTS),
    Mutation("memory.fp8.any_framework", "precision fp8 accepted with every framework",
             _setattr("config", "FP8_FRAMEWORKS", lambda mod: tuple(mod.FRAMEWORKS)), TESTS),
    Mutation("memory.fp8.plain_precision", "precision fp8 has no FP8 effects (fp8 flag off)",
             lambda mp: _fp8_flag_off(mp), TESTS),
]


def _fp8_flag_off(mp):
    from scaling_planner.memory import states

    mp.setitem(states.PRECISIONS, "fp8", replace(states.PRECISIONS["fp8"], fp8=False))


# ---------------------------------------------------------------------------- issue 12 (default stack, fp32 SDPA, ...)
def _default_generic(mp):
    from scaling_planner.memory import estimate

    orig = estimate.MemoryConfig
    mp.setattr(estimate, "MemoryConfig", lambda *a, **k: orig(*a, **{"framework": "generic", **k}))


MUTATIONS += [
    Mutation("memory.default.generic", "estimate_memory without a config uses the generic stack",
             _default_generic, TESTS),
    Mutation("memory.activations.sdpa_math_fallback", "fp32 GQA SDPA saves no s² probabilities (math kernel ignored)",
             _zero("activations", "sdpa_math_fallback"), TESTS),
    Mutation("memory.profile.hf.sdpa_gqa_fp32_math", "hf profile: sdpa_gqa_fp32_math flipped to False",
             _fact("hf", "sdpa_gqa_fp32_math", False), TESTS),
    Mutation("memory.torchtune.optimizer_in_bwd_ignored", "optimizer_in_bwd keeps the whole gradient buffer",
             _setattr("training", "optimizer_in_backward", lambda mod: lambda shape, c, prof, sb, rp, ms: (ms, 0.0)),
             TESTS),
    Mutation("memory.torchtune.activation_offload_ignored", "activation offloading keeps the checkpoints on the GPU",
             _setattr("activations", "checkpoint_on_gpu", lambda mod: mod.full_recompute_checkpoint), TESTS),
    Mutation("memory.profile.megatron.logits_2_bytes", "megatron logits at 2 B (theoretical_memory_usage.py's count)",
             _fact("megatron", "logits_bytes", 2.0), TESTS),
]


# ---------------------------------------------------------------------------- issue 12: QLoRA upcast, paged, MoE loop
_KPM_TESTS = TESTS + ("tests/test_memory_kbit_paged_moe.py",)


def _kbit_checkpoint_16bit(mod):
    orig = mod.full_recompute_checkpoint
    return lambda shape, c: orig(shape, replace(c, method="lora") if c.method == "qlora" else c)


def _kbit_lora_copies_shared(mod):
    orig = mod.lora_intermediates

    def f(shape, c, prof, trainable, adapted):  # adapters share the 16-bit norm output, as without the upcast
        return orig(shape, c, replace(prof, kbit_fp32_upcast=False), trainable, adapted)

    return f


def _kbit_unquantised_16bit(mp):
    from scaling_planner.memory import training

    orig = training.state_bytes
    mp.setattr(training, "state_bytes", lambda shape, c, prof: replace(orig(shape, c, prof), unquantised=2.0))


MUTATIONS += [
    Mutation("memory.profile.hf.kbit_fp32_upcast", "hf profile: kbit_fp32_upcast flipped to False",
             _fact("hf", "kbit_fp32_upcast", False), _KPM_TESTS),
    Mutation("memory.profile.generic.kbit_fp32_upcast", "generic profile: kbit_fp32_upcast flipped to True",
             _fact("generic", "kbit_fp32_upcast", True), _KPM_TESTS),
    Mutation("memory.profile.hf.moe_token_copies", "hf profile: moe_token_copies flipped to False",
             _fact("hf", "moe_token_copies", False), _KPM_TESTS),
    Mutation("memory.kbit.activations_16bit", "QLoRA upcast ignored in activations (16-bit stream, shared inputs)",
             _setattr("activations", "kbit_upcast", lambda mod: lambda c, prof=None: False), _KPM_TESTS),
    Mutation("memory.kbit.unquantised_16bit", "prepare_model_for_kbit_training's fp32 embeddings/head/norms ignored",
             _kbit_unquantised_16bit, _KPM_TESTS),
    Mutation("memory.kbit.checkpoint_16bit", "full-recompute checkpoints counted 16-bit under the QLoRA upcast",
             _setattr("activations", "full_recompute_checkpoint", _kbit_checkpoint_16bit), _KPM_TESTS),
    Mutation("memory.kbit.lora_copies_shared", "adapters share the norm output instead of their own bf16 copies",
             _setattr("activations", "lora_intermediates", _kbit_lora_copies_shared), _KPM_TESTS),
    Mutation("memory.buffers.kbit_head_cast_copy", "buffer kbit_head_cast_copy returns 0",
             _zero("training", "kbit_head_cast_copy"), _KPM_TESTS),
    Mutation("memory.activations.moe_routing", "activation component moe_routing returns 0",
             _zero("activations", "moe_routing"), _KPM_TESTS),
    Mutation("memory.paged.not_unified", "paged optimizer states counted in torch's allocated bytes",
             _zero("training", "paged_optimizer_bytes"), _KPM_TESTS),
    Mutation("memory.paged.no_threshold", "every tensor's state paged (bitsandbytes' 1e5-element floor ignored)",
             _setattr("training", "PAGED_MIN_NUMEL", lambda mod: 0), _KPM_TESTS),
    Mutation("memory.paged.32bit_as_8bit", "paged-adamw-32bit states counted at 1 B",
             lambda mp: _paged_32_as_8(mp), _KPM_TESTS),
]


def _paged_32_as_8(mp):
    from scaling_planner.memory import states

    mp.setitem(states.PAGED_STATE_BYTES, "paged-adamw-32bit", 2.0)
