"""Where the attention and feed-forward sub-layers live in each architecture.

Methods never name architecture-specific modules: they act on an `Anatomy`, a list
of attention sites (q, k, v, output projections, the module that computes attention)
and FFN sites (up and down projections), plus the layer norms, biases and position
tables the FPT recipe unfreezes. One small function per family builds it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn


@dataclass
class Proj:
    """A linear map: an `nn.Linear` (weight out×in) or GPT-2's `Conv1D` (weight in×out).

    `start`/`stop` select a slice of the output features, for fused projections
    (GPT-2's c_attn holds q, k and v side by side).
    """

    module: nn.Module
    in_features: int
    out_features: int
    start: int = 0
    stop: int | None = None

    @property
    def transposed(self) -> bool:
        """True when the weight is stored in×out (Conv1D)."""
        return not isinstance(self.module, nn.Linear)

    @property
    def width(self) -> int:
        return (self.stop if self.stop is not None else self.out_features) - self.start


@dataclass
class AttnSite:
    """One attention sub-layer. `kind` is self (encoder or encoder-only), decoder (causal self) or cross."""

    name: str
    kind: str
    core: nn.Module
    q: Proj
    k: Proj
    v: Proj
    o: Proj
    n_heads: int
    head_dim: int


@dataclass
class FFNSite:
    """One feed-forward sub-layer: `up` reads the sub-layer input, `down` writes its output."""

    name: str
    up: Proj
    down: Proj


@dataclass
class Anatomy:
    """The pieces of a transformer that the design space modifies."""

    family: str
    d_model: int
    n_layers: int
    attn: list[AttnSite]
    ffn: list[FFNSite]
    layer_norms: list[nn.Module]
    positions: list[nn.Module]
    token_embeddings: list[nn.Module] = field(default_factory=list)
    input_layer: nn.Module | None = None  # a task model's own input layer feeding the backbone (FPT's wrapper)

    @property
    def unused(self) -> list[nn.Module]:
        """Backbone modules the model never reads: behind a task model's own input layer (FPT), the token-embedding
        table. They stay frozen whatever the method, so full training neither counts nor saves them (MiniLM's
        word embeddings are 11.7M of its 22.7M parameters; GPT-2's `wte` 38.6M of 124M)."""
        return self.token_embeddings if self.input_layer is not None else []


def _linear(m: nn.Linear) -> Proj:
    return Proj(m, m.in_features, m.out_features)


def _conv1d(m: nn.Module, start: int = 0, stop: int | None = None) -> Proj:
    n_in, n_out = m.weight.shape
    return Proj(m, n_in, n_out, start, stop)


def _norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.LayerNorm) or type(m).__name__.endswith("LayerNorm")]


def _bert(core: nn.Module) -> Anatomy:
    cfg = core.config
    attn, ffn = [], []
    for i, layer in enumerate(core.encoder.layer):
        a = layer.attention
        heads = cfg.num_attention_heads
        attn.append(AttnSite(f"layer.{i}.attention", "self", a.self, _linear(a.self.query), _linear(a.self.key),
                             _linear(a.self.value), _linear(a.output.dense), heads, cfg.hidden_size // heads))
        ffn.append(FFNSite(f"layer.{i}.ffn", _linear(layer.intermediate.dense), _linear(layer.output.dense)))
    emb = core.embeddings
    return Anatomy(cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers, attn, ffn, _norms(core),
                   [emb.position_embeddings], [emb.word_embeddings])


def _gpt2(core: nn.Module) -> Anatomy:
    cfg = core.config
    d, heads = cfg.n_embd, cfg.n_head
    attn, ffn = [], []
    for i, block in enumerate(core.h):
        c = block.attn.c_attn
        attn.append(AttnSite(f"h.{i}.attn", "decoder", block.attn, _conv1d(c, 0, d), _conv1d(c, d, 2 * d),
                             _conv1d(c, 2 * d, 3 * d), _conv1d(block.attn.c_proj), heads, d // heads))
        ffn.append(FFNSite(f"h.{i}.mlp", _conv1d(block.mlp.c_fc), _conv1d(block.mlp.c_proj)))
    return Anatomy("gpt2", d, cfg.n_layer, attn, ffn, _norms(core), [core.wpe], [core.wte])


def _bart_attn(name: str, kind: str, m: nn.Module) -> AttnSite:
    return AttnSite(name, kind, m, _linear(m.q_proj), _linear(m.k_proj), _linear(m.v_proj), _linear(m.out_proj),
                    m.num_heads, m.head_dim)


def _bart(core: nn.Module) -> Anatomy:
    cfg = core.config
    attn, ffn = [], []
    for side in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(core, side).layers):
            prefix = f"{side}.{i}"
            attn.append(_bart_attn(f"{prefix}.self_attn", "self" if side == "encoder" else "decoder", layer.self_attn))
            if side == "decoder":
                attn.append(_bart_attn(f"{prefix}.cross_attn", "cross", layer.encoder_attn))
            ffn.append(FFNSite(f"{prefix}.ffn", _linear(layer.fc1), _linear(layer.fc2)))
    positions = [core.encoder.embed_positions, core.decoder.embed_positions]
    return Anatomy(cfg.model_type, cfg.d_model, cfg.encoder_layers, attn, ffn, _norms(core), positions, [core.shared])


def _t5_stack(stack: nn.Module, side: str, attn: list, ffn: list) -> None:
    for i, block in enumerate(stack.block):
        layers = list(block.layer)
        sa = layers[0].SelfAttention
        kind = "self" if side == "encoder" else "decoder"
        attn.append(AttnSite(f"{side}.{i}.self_attn", kind, sa, _linear(sa.q), _linear(sa.k), _linear(sa.v),
                             _linear(sa.o), sa.n_heads, sa.key_value_proj_dim))
        if side == "decoder":
            ca = layers[1].EncDecAttention
            attn.append(AttnSite(f"{side}.{i}.cross_attn", "cross", ca, _linear(ca.q), _linear(ca.k), _linear(ca.v),
                                 _linear(ca.o), ca.n_heads, ca.key_value_proj_dim))
        dense = layers[-1].DenseReluDense
        up = dense.wi if hasattr(dense, "wi") else dense.wi_0
        ffn.append(FFNSite(f"{side}.{i}.ffn", _linear(up), _linear(dense.wo)))


def _t5(core: nn.Module) -> Anatomy:
    cfg = core.config
    attn: list[AttnSite] = []
    ffn: list[FFNSite] = []
    for side in ("encoder", "decoder"):
        stack = getattr(core, side, None)
        if stack is not None:
            _t5_stack(stack, side, attn, ffn)
    biases = [m.relative_attention_bias for m in core.modules() if getattr(m, "has_relative_attention_bias", False)]
    return Anatomy("t5", cfg.d_model, cfg.num_layers, attn, ffn, _norms(core), biases, [core.shared])


def _vit(core: nn.Module) -> Anatomy:
    """ViT as FPT runs it (`benchmark.backbones.vit.ViTSequence`: layers and a patch position table)."""
    cfg = core.config
    heads = cfg.num_attention_heads
    attn, ffn = [], []
    for i, layer in enumerate(core.layers):
        a = layer.attention
        attn.append(AttnSite(f"layers.{i}.attention", "self", a, _linear(a.q_proj), _linear(a.k_proj),
                             _linear(a.v_proj), _linear(a.o_proj), heads, cfg.hidden_size // heads))
        ffn.append(FFNSite(f"layers.{i}.mlp", _linear(layer.mlp.fc1), _linear(layer.mlp.fc2)))
    return Anatomy("vit", cfg.hidden_size, cfg.num_hidden_layers, attn, ffn, _norms(core),
                   [core.position_embeddings])


def _lstm(core: nn.Module) -> Anatomy:
    """The LSTM baseline: no attention, FFN, norms or positions; only full training changes it."""
    cfg = core.config
    return Anatomy("lstm", cfg.hidden_size, cfg.num_layers, [], [], [], [])


FAMILIES: dict[str, Callable[[nn.Module], Anatomy]] = {
    "bert": _bert,
    "roberta": _bert,
    "gpt2": _gpt2,
    "bart": _bart,
    "mbart": _bart,
    "t5": _t5,
    "longformer": _bert,  # BERT's layout; the global-attention projections sit inside `attention.self`
    "vit": _vit,
    "lstm": _lstm,
}


def core_of(model: nn.Module) -> nn.Module:
    """The bare transformer inside a task model (a *For... head model, or our FPT wrapper)."""
    core = getattr(model, "base_model", model)
    if core is model and hasattr(model, "backbone"):
        core = model.backbone
    return core


def anatomy(model: nn.Module) -> Anatomy:
    """Describe `model`'s sub-layers; the model may be a task model wrapping the transformer."""
    core = core_of(model)
    family = getattr(core.config, "model_type", None)
    if family not in FAMILIES:
        raise ValueError(f"no anatomy for model type {family!r}; known: {', '.join(sorted(FAMILIES))}")
    anat = FAMILIES[family](core)
    anat.input_layer = getattr(model, "input_layer", None) if model is not core else None
    return anat
