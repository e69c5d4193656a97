"""Decoder-only transformer shapes and exact parameter / FLOP counts.

Conventions:
* ``params_total`` counts every parameter, embeddings and LM head included (Chinchilla/Epoch's N).
* ``params_non_embedding`` excludes the token-embedding matrix, learned position embeddings and an untied LM head
  (Kaplan's N).
* ``params_active`` counts, for MoE, only the top-k experts a token passes through (and the router).
* FLOPs per token: ``6·N`` (Kaplan's rule, N = active params as model cards and PaLM's MFU count) and the
  attention-inclusive ``6·N + 12·L·(a·d_h)·s·kappa`` (PaLM App. B; kappa = 1 full square, 0.5 causal kernels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import ScalePlanError, unknown_name

NORMS = ("rmsnorm", "layernorm")
BIASES = ("none", "all", "qkv")
LINEARS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclass(frozen=True)
class ModelShape:
    """Architecture of a decoder-only transformer. ``n_kv_heads`` < ``n_heads`` is GQA (1 = MQA)."""

    vocab: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    ffn: int | None = None
    gated_mlp: bool = True
    tied_embeddings: bool = False
    norm: str = "rmsnorm"
    bias: str = "none"
    learned_pos: int = 0
    norms_per_layer: int = 2
    n_experts: int = 0
    top_k: int = 0
    shared_experts: int = 0  # MoE: always-active experts, each of ``ffn`` (DeepSeekMoE / Qwen-MoE shared experts)
    # non-gated MLP activation: "gelu" (exact, one native kernel) or "gelu_tanh" (GPT-2's gelu_new / NewGELUActivation,
    # eight element-wise ops in transformers); gated MLPs are SiLU·up
    activation: str = "gelu"
    extra_params: int = 0  # e.g. BLOOM's embedding LayerNorm, OPT's projections
    name: str = "custom"

    def __post_init__(self):
        for f in ("vocab", "d_model", "n_layers", "n_heads"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ScalePlanError(f"model shape: {f} must be a positive integer, got {v!r}"
                                     if isinstance(v, (str, bool)) else
                                     f"model shape: {f} must be a positive integer, got {v}")
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.head_dim is None:
            if self.d_model % self.n_heads:
                raise ScalePlanError(f"model shape: n_heads ({self.n_heads}) must divide d_model ({self.d_model}), "
                                     "or give head_dim", param=("n_heads", "d_model", "head_dim"))
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)
        if self.ffn is None:
            ffn = 4 * self.d_model if not self.gated_mlp else 256 * math.ceil(8 * self.d_model / 3 / 256)
            object.__setattr__(self, "ffn", ffn)
        for f in ("n_kv_heads", "head_dim", "ffn"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ScalePlanError(f"model shape: {f} must be a positive integer, got {v!r}"
                                     if isinstance(v, (str, bool)) else
                                     f"model shape: {f} must be a positive integer, got {v}")
        if self.n_heads % self.n_kv_heads:
            raise ScalePlanError(f"model shape: kv heads ({self.n_kv_heads}) must divide heads ({self.n_heads})")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ScalePlanError("model shape: activation must be gelu or gelu_tanh", param="activation")
        if self.norm not in NORMS:
            raise ScalePlanError(f"model shape: norm must be one of {', '.join(NORMS)}")
        if self.bias not in BIASES:
            raise ScalePlanError(f"model shape: bias must be one of {', '.join(BIASES)}")
        if self.n_experts and not (0 < self.top_k <= self.n_experts):
            raise ScalePlanError("model shape: MoE needs 0 < top_k <= experts")
        if self.shared_experts and not self.n_experts or self.shared_experts < 0:
            raise ScalePlanError("model shape: shared experts need an MoE (experts > 0) and a count >= 0",
                                 param="shared_experts")

    # ----------------------------------------------------------------------------- counts
    @property
    def q_width(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.n_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear in one layer (one expert for MoE MLPs)."""
        h, f = self.d_model, self.ffn
        d = {"q": (h, self.q_width), "k": (h, self.kv_width), "v": (h, self.kv_width), "o": (self.q_width, h)}
        if self.gated_mlp:
            d.update(gate=(h, f), up=(h, f), down=(f, h))
        else:
            d.update(up=(h, f), down=(f, h))
        return d

    @property
    def mlps_per_token(self) -> int:
        """MLPs of width ``ffn`` each token passes through: 1 (dense), top_k routed + the shared experts (MoE)."""
        return self.top_k + self.shared_experts if self.n_experts else 1

    def _norm_params(self) -> int:
        return self.d_model * (2 if self.norm == "layernorm" else 1)

    def attention_params(self) -> int:
        h = self.d_model
        p = h * self.q_width + 2 * h * self.kv_width + self.q_width * h
        if self.bias in ("all", "qkv"):
            p += self.q_width + 2 * self.kv_width
        if self.bias == "all":
            p += h
        return p

    def mlp_params(self) -> int:
        """One (expert) MLP."""
        h, f = self.d_model, self.ffn
        p = (3 if self.gated_mlp else 2) * h * f
        if self.bias == "all":
            p += (2 * f if self.gated_mlp else f) + h
        return p

    def layer_params(self, active: bool = False) -> int:
        n_mlp = 1 if not self.n_experts else (self.top_k if active else self.n_experts) + self.shared_experts
        router = self.d_model * self.n_experts if self.n_experts else 0
        return self.attention_params() + n_mlp * self.mlp_params() + router + self.norms_per_layer * self._norm_params()

    @property
    def embedding_params(self) -> int:
        """Token embedding + learned positions + an untied LM head."""
        return self.vocab * self.d_model * (1 if self.tied_embeddings else 2) + self.learned_pos * self.d_model

    @property
    def params_total(self) -> int:
        return (self.embedding_params + self.n_layers * self.layer_params() + self._norm_params()
                + self.extra_params)

    @property
    def params_non_embedding(self) -> int:
        return self.params_total - self.embedding_params

    @property
    def params_active(self) -> int:
        return self.params_total - self.n_layers * (self.layer_params() - self.layer_params(active=True))

    def flops_per_token(self, seq_len: int | None = None, kappa: float = 1.0) -> float:
        """Training FLOPs per token: 6·N_active, plus 12·L·(a·d_h)·s·kappa for attention when seq_len is given."""
        f = 6.0 * self.params_active
        if seq_len:
            f += 12.0 * self.n_layers * self.q_width * seq_len * kappa
        return f

    def describe(self) -> dict:
        return {"name": self.name, "vocab": self.vocab, "d_model": self.d_model, "n_layers": self.n_layers,
                "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads, "head_dim": self.head_dim, "ffn": self.ffn,
                "gated_mlp": self.gated_mlp, "tied_embeddings": self.tied_embeddings, "norm": self.norm,
                "bias": self.bias, "learned_pos": self.learned_pos, "n_experts": self.n_experts, "top_k": self.top_k,
                "shared_experts": self.shared_experts,
                "params_total": self.params_total, "params_non_embedding": self.params_non_embedding,
                "params_active": self.params_active}


# ------------------------------------------------------------------------------------ presets
def _llama(name, V, h, L, a, k, f, tied=False, head_dim=None, **kw):
    return ModelShape(name=name, vocab=V, d_model=h, n_layers=L, n_heads=a, n_kv_heads=k, ffn=f,
                      tied_embeddings=tied, head_dim=head_dim, **kw)


PRESETS: dict[str, ModelShape] = {s.name: s for s in (
    # Values from each model's Hugging Face config.json.
    _llama("llama-2-7b", 32000, 4096, 32, 32, 32, 11008),
    _llama("llama-2-13b", 32000, 5120, 40, 40, 40, 13824),
    _llama("llama-2-70b", 32000, 8192, 80, 64, 8, 28672),
    _llama("llama-3-8b", 128256, 4096, 32, 32, 8, 14336),
    _llama("llama-3-70b", 128256, 8192, 80, 64, 8, 28672),
    _llama("llama-3.1-8b", 128256, 4096, 32, 32, 8, 14336),
    _llama("llama-3.1-70b", 128256, 8192, 80, 64, 8, 28672),
    _llama("llama-3.1-405b", 128256, 16384, 126, 128, 8, 53248),
    _llama("llama-3.2-1b", 128256, 2048, 16, 32, 8, 8192, tied=True, head_dim=64),
    _llama("llama-3.2-3b", 128256, 3072, 28, 24, 8, 8192, tied=True, head_dim=128),
    _llama("mistral-7b", 32000, 4096, 32, 32, 8, 14336),
    _llama("mixtral-8x7b", 32000, 4096, 32, 32, 8, 14336, n_experts=8, top_k=2),
    _llama("qwen2.5-7b", 152064, 3584, 28, 28, 4, 18944, bias="qkv"),
    _llama("qwen2.5-0.5b", 151936, 896, 24, 14, 2, 4864, tied=True, bias="qkv"),
    _llama("gemma-7b", 256000, 3072, 28, 16, 16, 24576, tied=True, head_dim=256),
    _llama("phi-3-mini", 32064, 3072, 32, 32, 32, 8192),
    ModelShape(name="gpt2", vocab=50257, d_model=768, n_layers=12, n_heads=12, ffn=3072, gated_mlp=False, activation="gelu_tanh",
               tied_embeddings=True, norm="layernorm", bias="all", learned_pos=1024),
    ModelShape(name="gpt2-xl", vocab=50257, d_model=1600, n_layers=48, n_heads=25, ffn=6400, gated_mlp=False, activation="gelu_tanh",
               tied_embeddings=True, norm="layernorm", bias="all", learned_pos=1024),
    ModelShape(name="gpt3-175b", vocab=50257, d_model=12288, n_layers=96, n_heads=96, ffn=49152, gated_mlp=False,
               tied_embeddings=True, norm="layernorm", bias="all", learned_pos=2048),
)}


def get_preset(name: str) -> ModelShape:
    key = name.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    raise unknown_name("model", name, list(PRESETS), None)


def shape_for_params(n_params: float, vocab: int = 32000, *, tp: int = 1, pp: int = 1,
                     tied: bool = False, name: str | None = None) -> ModelShape:
    """A Llama-like shape whose exact total parameter count is closest to ``n_params``.

    Rule (documented default): head_dim 128, d_model a multiple of 128, gated MLP with ffn = 256·ceil(8·d/3/256)
    (Llama-2's rule), aspect ratio d_model/n_layers near 128 (Llama-2-7B/13B, Llama-3-8B), untied embeddings,
    GQA with 8 KV heads from 32 query heads up (MHA below). Heads divisible by ``tp``, layers by ``pp``.
    """
    if not (n_params > 0 and math.isfinite(n_params)):
        raise ScalePlanError("n_params must be a positive number", param="n_params")
    label = name or f"llama-like-{n_params:.3g}"
    best = None  # (err, width, layers, heads, kv heads, params_total)
    for d in range(256, 65537, 128):
        heads = d // 128
        if heads % tp:
            continue
        kv = 8 if heads >= 32 and heads % 8 == 0 else heads
        if kv % tp and heads % tp == 0 and kv < tp:
            kv = tp
        base = max(1, round(d / 128))
        # params_total is linear in the layer count: one shape per width gives every depth's count exactly
        one = ModelShape(vocab=vocab, d_model=d, n_layers=1, n_heads=heads, n_kv_heads=kv, tied_embeddings=tied,
                         name=label)
        total1, per_layer = one.params_total, one.layer_params()
        for L in range(max(1, base // 2), base * 2 + 1):
            if L % pp:
                continue
            total = total1 + (L - 1) * per_layer
            err = abs(math.log(total / n_params)) + 0.02 * abs(math.log(d / (128 * L)))
            if best is None or err < best[0]:
                best = (err, d, L, heads, kv, total)
        if best and best[5] > 4 * n_params and d > 1024:
            break
    if best is None:
        raise ScalePlanError(f"no Llama-like shape fits {n_params:.3g} params with tp={tp}, pp={pp}")
    _, d, L, heads, kv, _ = best
    best = (best[0], ModelShape(vocab=vocab, d_model=d, n_layers=L, n_heads=heads, n_kv_heads=kv,
                                tied_embeddings=tied, name=label))
    got = best[1].params_total
    if abs(math.log(got / n_params)) > math.log(1.25):  # outside the family's range: never substitute silently
        from .units import fmt_count

        raise ScalePlanError(f"{fmt_count(n_params)} params is outside the Llama-like shapes scaleplan builds "
                             f"(nearest: {fmt_count(got)}, {best[1].n_layers} layer{'s' * (best[1].n_layers != 1)} of width "
                             f"{best[1].d_model}); "
                             "give the shape (n_layers/d_model/n_heads) or a config",
                             param=("n_layers", "d_model", "n_heads"))
    return best[1]


def check_moe_counts(experts: int, top_k: int, shared: int = 0) -> None:
    """The one check of MoE counts given as numbers: at least 2 experts, 1 <= top_k <= experts, shared >= 0."""
    if experts < 2 or not 1 <= top_k <= experts:
        raise ScalePlanError(f"an MoE needs at least 2 experts and 1 <= top_k <= experts, got experts {experts}, "
                             f"top_k {top_k}", param=("experts", "top_k"))
    if shared < 0:
        raise ScalePlanError(f"shared_experts must be a count >= 0, got {shared}", param="shared_experts")


def moe_shape(dense: ModelShape, experts: int, top_k: int, total: float | None = None,
              name: str | None = None, shared: int = 0) -> ModelShape:
    """An MoE of ``experts`` experts routed top-``top_k`` built on the dense shape ``dense`` (same attention, width,
    depth, vocabulary). Rule (documented default): each expert's ffn = 128·round(ffn / top_k / 128), so the ``top_k``
    active experts have the dense model's MLP width and the active count stays the dense count (fine-grained
    experts). With ``total`` (all parameters), the expert ffn is instead the multiple of 128 whose total is nearest
    ``total``; the active count then follows. ``shared`` always-active experts of the same ffn count among the
    ``top_k`` widths: each expert's ffn = ffn / (top_k + shared)."""
    check_moe_counts(experts, top_k, shared)
    base = replace(dense, n_experts=experts, top_k=top_k, shared_experts=shared,
                   name=name or f"{dense.name}-{experts}e-top{top_k}" + (f"+{shared}s" if shared else ""))
    if total is None:
        return replace(base, ffn=max(128, 128 * round(dense.ffn / (top_k + shared) / 128)))
    unit = replace(base, ffn=128)
    per_128 = replace(base, ffn=256).params_total - unit.params_total  # parameters per 128 of expert ffn
    steps = max(1, round((total - unit.params_total) / per_128) + 1)
    return replace(base, ffn=128 * steps)
