"""Hugging Face ``config.json`` -> :class:`ModelShape`, with each family's own field names and defaults."""

from __future__ import annotations

from pathlib import Path

from ..errors import ScalePlanError
from ..model import ModelShape
from .files import read_json

SUPPORTED_CONFIGS = ("llama", "mistral", "mixtral", "qwen2", "gemma", "gpt2", "gpt_neox", "opt", "bloom", "falcon",
                     "phi3", "qwen2_moe", "qwen3_moe")


def from_hf_config(path: str | Path) -> ModelShape:
    """Read a Hugging Face ``config.json`` using each family's own field names and defaults."""
    p = Path(path)
    c = read_json(p, "config file")
    if not isinstance(c, dict):
        raise ScalePlanError(f"{p}: a config.json must hold one JSON object")
    mt = c.get("model_type")
    if mt not in SUPPORTED_CONFIGS:
        raise ScalePlanError(f"{p}: model_type {mt!r} is not supported; supported: {', '.join(SUPPORTED_CONFIGS)}")

    def need(*keys, default=None):
        for k in keys:
            if k in c and c[k] is not None:
                return c[k]
        if default is not None:
            return default
        raise ScalePlanError(f"{p}: missing field {keys[0]!r} for model_type {mt!r}")

    name = c.get("_name_or_path") or p.parent.name or mt
    try:
        if mt in ("llama", "mistral", "mixtral", "qwen2", "gemma", "phi3"):
            h = need("hidden_size")
            a = need("num_attention_heads")
            kw = dict(vocab=need("vocab_size"), d_model=h, n_layers=need("num_hidden_layers"), n_heads=a,
                      n_kv_heads=c.get("num_key_value_heads") or a, ffn=need("intermediate_size"),
                      head_dim=c.get("head_dim") or None, gated_mlp=True, norm="rmsnorm",
                      tied_embeddings=bool(c.get("tie_word_embeddings", mt == "gemma")), name=name)
            if mt == "qwen2":
                kw["bias"] = "qkv"
            elif c.get("attention_bias") or c.get("mlp_bias"):
                kw["bias"] = "all" if c.get("mlp_bias") else "qkv"
            if mt == "mixtral":
                kw.update(n_experts=need("num_local_experts"), top_k=need("num_experts_per_tok"))
            return ModelShape(**kw)
        if mt in ("qwen2_moe", "qwen3_moe"):  # transformers Qwen2MoeConfig / Qwen3MoeConfig field names
            if c.get("mlp_only_layers") or c.get("decoder_sparse_step", 1) != 1:
                raise ScalePlanError(f"{p}: {mt} with dense layers among the MoE ones (mlp_only_layers / "
                                     "decoder_sparse_step) is not supported: give the shape with --layers ... --experts")
            f = need("moe_intermediate_size")
            shared_f = (c.get("shared_expert_intermediate_size") or 0) if mt == "qwen2_moe" else 0
            if shared_f % f:
                raise ScalePlanError(f"{p}: shared_expert_intermediate_size {shared_f} is not a multiple of "
                                     f"moe_intermediate_size {f}; scaleplan counts shared experts of the routed width")
            a = need("num_attention_heads")
            L = need("num_hidden_layers")
            hd = c.get("head_dim") or None
            return ModelShape(vocab=need("vocab_size"), d_model=need("hidden_size"), n_layers=L, n_heads=a,
                              n_kv_heads=c.get("num_key_value_heads") or a, head_dim=hd, ffn=f, gated_mlp=True,
                              norm="rmsnorm", n_experts=need("num_experts"), top_k=need("num_experts_per_tok"),
                              shared_experts=shared_f // f, bias="qkv" if mt == "qwen2_moe" else "none",
                              tied_embeddings=bool(c.get("tie_word_embeddings", False)), name=name,
                              # Qwen2-MoE: the shared expert's sigmoid gate (h -> 1); Qwen3-MoE: q/k RMSNorm weights
                              extra_params=L * (need("hidden_size") if mt == "qwen2_moe" else 2 * (hd or 0)))
        if mt == "gpt2":
            h = need("n_embd")
            return ModelShape(vocab=need("vocab_size"), d_model=h, n_layers=need("n_layer"), n_heads=need("n_head"),
                              ffn=c.get("n_inner") or 4 * h, gated_mlp=False, norm="layernorm", bias="all",
                              learned_pos=need("n_positions", "n_ctx"),
                              # transformers ACT2FN: "gelu_new" (GPT-2's default) is the tanh approximation in eager ops
                              activation="gelu_tanh" if c.get("activation_function", "gelu_new") in
                              ("gelu_new", "gelu_pytorch_tanh", "gelu_fast") else "gelu",
                              tied_embeddings=bool(c.get("tie_word_embeddings", True)), name=name)
        if mt == "gpt_neox":
            h = need("hidden_size")
            return ModelShape(vocab=need("vocab_size"), d_model=h, n_layers=need("num_hidden_layers"),
                              n_heads=need("num_attention_heads"), ffn=need("intermediate_size", default=4 * h),
                              gated_mlp=False, norm="layernorm", bias="all",
                              tied_embeddings=bool(c.get("tie_word_embeddings", False)), name=name)
        if mt == "opt":
            h = need("hidden_size")
            proj = c.get("word_embed_proj_dim") or h
            extra = 2 * proj * h if proj != h else 0  # project_in / project_out
            if not c.get("do_layer_norm_before", True):
                extra -= 2 * h  # no final layer norm
            return ModelShape(vocab=need("vocab_size"), d_model=h, n_layers=need("num_hidden_layers"),
                              n_heads=need("num_attention_heads"), ffn=need("ffn_dim"), gated_mlp=False,
                              norm="layernorm", bias="all", learned_pos=need("max_position_embeddings") + 2,
                              tied_embeddings=bool(c.get("tie_word_embeddings", True)), extra_params=extra,
                              name=name)
        if mt == "bloom":
            h = need("hidden_size", "n_embed")
            return ModelShape(vocab=need("vocab_size"), d_model=h, n_layers=need("n_layer", "num_hidden_layers"),
                              n_heads=need("n_head", "num_attention_heads"), ffn=4 * h, gated_mlp=False,
                              norm="layernorm", bias="all", tied_embeddings=True, extra_params=2 * h, name=name)
        if mt == "falcon":
            h = need("hidden_size")
            a = need("num_attention_heads")
            new_arch = bool(c.get("new_decoder_architecture", False))
            if new_arch:
                kv = need("num_kv_heads", default=a)
            elif c.get("multi_query", True):
                kv = 1
            else:
                kv = a
            parallel = bool(c.get("parallel_attn", True))
            return ModelShape(vocab=need("vocab_size"), d_model=h, n_layers=need("num_hidden_layers"), n_heads=a,
                              n_kv_heads=kv, ffn=c.get("ffn_hidden_size") or 4 * h, gated_mlp=False,
                              norm="layernorm", bias="all" if c.get("bias", False) else "none",
                              norms_per_layer=2 if (new_arch or not parallel) else 1,
                              tied_embeddings=bool(c.get("tie_word_embeddings", True)), name=name)
    except ScalePlanError as e:
        if str(e).startswith(str(p)):
            raise
        raise ScalePlanError(f"{p}: {e}") from None
    raise AssertionError(mt)
