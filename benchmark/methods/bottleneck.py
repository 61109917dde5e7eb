"""Bottleneck adapters: Δh = s · ReLU(h W_down) W_up (Houlsby et al. 2019; He et al.'s PA, SA, MH-PA).

Sites and insertions (He et al. §3, Fig. 3):
- `attn`, sequential (SA): reads and writes the attention output after its output projection.
- `attn`, parallel (PA): reads the attention sub-layer's input, adds to the concatenated head outputs
  before the output projection.
- `ffn`, sequential: after the down projection. `ffn`, parallel: reads the FFN input (the up
  projection's input, BART's post-attention-LayerNorm state) and adds at the down projection's output.
- `attn_heads` (multi-head PA, parallel only): per head, ReLU(x Wq P_kᵀ) P_v added to that head's output.
Options: `layer_norm` in/out/none, `init` lora (Kaiming down, zero up: starts as identity) or bert
(N(0, 0.02): does not), `bias` (true), `dropout` after the ReLU (a rate, or `attention` / `hidden`: the
backbone's own attention or hidden dropout rate). Composition add, scaled (fixed s) or learned (s a
trained scalar starting at s). The paper counts 2·r·d per site, biases, layer norms and the scalar
excluded. Multi-head PA also takes `query_norm` (its query is q_proj(LN(x)) through a new trainable
LayerNorm) and `query_scaling` (true: q scaled by 1/sqrt(head_dim) as attention's is).

The paper does not state these details; the defaults are the paper's formulas. The reference code's
choices are presets (`presets.py`, names ending in `-ref`): its attention adapters use an input
LayerNorm, "bert" init and the attention's dropout after the ReLU; Houlsby's FFN adapter "bert" init
and the hidden dropout; its multi-head PA reads the query through a LayerNorm, unscaled.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.anatomy import Anatomy, AttnSite, core_of
from benchmark.errors import ConfigError
from benchmark.methods.attention import QueryNorm, attach_head_mod
from benchmark.methods.hooks import Captured, device_of
from benchmark.methods.space import Form, Mod, attn_sites, names_in, require

INITS = ("lora", "bert")
LAYER_NORMS = ("none", "in", "out")
# `dropout` by name: the backbone config's own rate (the reference passes its attention layer's or layer's dropout)
DROPOUT_OF = {"attention": ("attention_dropout", "attention_probs_dropout_prob", "attn_pdrop", "dropout_rate"),
              "hidden": ("dropout", "hidden_dropout_prob", "resid_pdrop", "dropout_rate")}


def dropout_rate(model: nn.Module, value: float | str) -> float:
    """A rate as given, or the backbone config's attention / hidden dropout rate for `attention` / `hidden`."""
    if not isinstance(value, str):
        return float(value)
    config = core_of(model).config
    for key in DROPOUT_OF[value]:
        if isinstance(getattr(config, key, None), (int, float)):
            return float(getattr(config, key))
    raise ConfigError(f"dropout={value!r}: {type(config).__name__} has none of {', '.join(DROPOUT_OF[value])}")


def _scale(mod: Mod, device: torch.device) -> float | nn.Parameter:
    if mod.composition == "learned":
        return nn.Parameter(torch.full((), float(mod.s), device=device))
    return float(mod.s) if mod.composition == "scaled" else 1.0


def _init_pair(down: torch.Tensor, up: torch.Tensor, how: str) -> None:
    """lora: Kaiming-uniform down (fan-in = its input width), zero up; bert: both N(0, 0.02)."""
    with torch.no_grad():
        if how == "lora":
            nn.init.kaiming_uniform_(down, a=math.sqrt(5))
            nn.init.zeros_(up)
        else:
            nn.init.normal_(down, std=0.02)
            nn.init.normal_(up, std=0.02)


class Adapter(nn.Module):
    """x ↦ s · LN_out(ReLU(LN_in(x) W_down) W_up), computed in its own dtype."""

    def __init__(self, d_in: int, r: int, d_out: int, mod: Mod, device: torch.device, dropout: float = 0.0) -> None:
        super().__init__()
        ln, bias = mod.options.get("layer_norm", "none"), mod.options.get("bias", True)
        self.ln_in = nn.LayerNorm(d_in, device=device) if ln == "in" else nn.Identity()
        self.down = nn.Linear(d_in, r, bias=bias, device=device)
        self.up = nn.Linear(r, d_out, bias=bias, device=device)
        self.ln_out = nn.LayerNorm(d_out, device=device) if ln == "out" else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        _init_pair(self.down.weight, self.up.weight, mod.options.get("init", "lora"))
        for linear in (self.down, self.up):
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)
        self.scale = _scale(mod, device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_in(x.to(self.down.weight.dtype))
        return self.ln_out(self.up(self.dropout(F.relu(self.down(h))))) * self.scale


class HeadAdapter(nn.Module):
    """Multi-head PA: per head h, Δ_h = s · ReLU(q_h P_k,hᵀ · scaling) P_v,h with P_k,h, P_v,h of shape r × hd.
    The frozen query projection plays W_down's first half, so each head costs 2·r·hd."""

    concat = False

    def __init__(self, site: AttnSite, r: int, mod: Mod, device: torch.device) -> None:
        super().__init__()
        self.query_norm = QueryNorm(site, device) if mod.options.get("query_norm", False) else None
        self.query_scaling = bool(mod.options.get("query_scaling", True))
        self.down = nn.Parameter(torch.empty(site.n_heads, r, site.head_dim, device=device))
        self.up = nn.Parameter(torch.empty(site.n_heads, r, site.head_dim, device=device))
        for h in range(site.n_heads):
            _init_pair(self.down.data[h], self.up.data[h], mod.options.get("init", "lora"))
        self.scale = _scale(mod, device)

    def delta(self, query: torch.Tensor, scaling: float) -> torch.Tensor:
        if self.query_norm is not None:
            query = self.query_norm(query.dtype)
        q = query.to(self.down.dtype) * (scaling if self.query_scaling else 1.0)
        a = F.relu(torch.einsum("bhtd,hrd->bhtr", q, self.down))
        return torch.einsum("bhtr,hrd->bthd", a, self.up) * self.scale


def _shapes(anat: Anatomy, mod: Mod) -> list[tuple[int, int]]:
    """(d_in, d_out) of each Adapter a mod attaches (not for attn_heads), in attach order."""
    seq = mod.insertion == "sequential"
    if mod.site == "ffn":
        return [(f.down.width if seq else f.up.in_features, f.down.width) for f in anat.ffn]
    return [(a.o.width, a.o.width) if seq else (a.q.in_features, a.o.in_features) for a in attn_sites(anat, mod)]


class BottleneckForm(Form):
    name = "bottleneck"
    sites = ("attn", "ffn", "attn_heads")
    insertions = ("parallel", "sequential")
    compositions = ("add", "scaled", "learned")  # fixed s, or s a trained scalar starting at s
    size_key = "r"
    options = ("layer_norm", "init", "bias", "dropout", "query_norm", "query_scaling")

    def check(self, mod: Mod, where: str) -> None:
        opts = mod.options
        rate = opts.get("dropout", 0.0)
        if not (isinstance(rate, str) and rate in DROPOUT_OF) and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                                       or not 0 <= rate < 1):
            raise ConfigError(f"{where}: dropout={rate!r} must be a rate in [0, 1) or one of {tuple(DROPOUT_OF)}")
        for key in ("query_norm", "query_scaling"):
            if key in opts and not isinstance(opts[key], bool):
                raise ConfigError(f"{where}: {key}={opts[key]!r} must be true or false")
            if key in opts and mod.site != "attn_heads":
                raise ConfigError(f"{where}: {key} applies to site 'attn_heads' (multi-head PA) only")
        if opts.get("layer_norm", "none") not in LAYER_NORMS:
            raise ConfigError(f"{where}: layer_norm={opts['layer_norm']!r} is not one of {LAYER_NORMS}")
        if opts.get("init", "lora") not in INITS:
            raise ConfigError(f"{where}: init={opts['init']!r} is not one of {INITS}")
        if not isinstance(opts.get("bias", True), bool):
            raise ConfigError(f"{where}: bias={opts['bias']!r} must be true or false")
        if mod.site == "attn_heads" and mod.insertion != "parallel":
            raise ConfigError(f"{where}: site 'attn_heads' (multi-head PA) reads the queries, so insertion must be "
                              f"'parallel', not {mod.insertion!r}")
        if mod.site == "attn_heads" and opts.get("layer_norm", "none") != "none":
            raise ConfigError(f"{where}: site 'attn_heads' has no layer_norm option (it must be 'none'; the "
                              f"reference's LayerNorm on its query is query_norm)")

    def starts_as_identity(self, mod: Mod) -> bool:
        return mod.options.get("init", "lora") == "lora"

    def why_not_mergeable(self, mod: Mod) -> str:
        return (f"bottleneck@{mod.site} ({mod.insertion}, composition {mod.composition}) has a ReLU between "
                f"W_down and W_up, so no linear weight update equals it; keep the adapter at inference")

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        child = f"petl_bottleneck_{tag}"
        added: list[nn.Module] = []
        rate = dropout_rate(model, mod.options.get("dropout", 0.0))
        if mod.site == "ffn":
            for f, (d_in, d_out) in zip(require(anat.ffn, anat, mod, "FFN sub-layers"), _shapes(anat, mod)):
                host = f.down.module
                adapter = Adapter(d_in, mod.r, d_out, mod, device_of(host), rate)
                host.add_module(child, adapter)
                _wire(host, adapter, None if mod.insertion == "sequential" else Captured(f.up.module),
                      into_input=False)
                added.append(adapter)
            return names_in(model, added)
        sites = require(attn_sites(anat, mod), anat, mod, "attention sub-layers")
        if mod.site == "attn_heads":
            for a in sites:
                head = HeadAdapter(a, mod.r, mod, device_of(a.core))
                a.core.add_module(child, head)
                attach_head_mod(model, a.core, head)
                added.append(head)
            return names_in(model, added)
        for a, (d_in, d_out) in zip(sites, _shapes(anat, mod)):
            adapter = Adapter(d_in, mod.r, d_out, mod, device_of(a.o.module), rate)
            a.o.module.add_module(child, adapter)
            if mod.insertion == "sequential":
                _wire(a.o.module, adapter, None, into_input=False)
            else:
                _wire(a.o.module, adapter, Captured(a.core), into_input=True)
            added.append(adapter)
        return names_in(model, added)

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        if mod.site == "attn_heads":
            return sum(2 * mod.r * a.n_heads * a.head_dim for a in attn_sites(anat, mod))
        return sum(mod.r * (d_in + d_out) for d_in, d_out in _shapes(anat, mod))

    def extras(self, model: nn.Module, anat: Anatomy, mod: Mod) -> dict[str, int]:
        """Biases (r + d_out per adapter), layer norms (2·width) and a learned scale per adapter."""
        n_sites = len(attn_sites(anat, mod)) if mod.site == "attn_heads" else len(_shapes(anat, mod))
        out = {}
        if mod.site != "attn_heads":
            shapes = _shapes(anat, mod)
            if mod.options.get("bias", True):
                out["biases"] = sum(mod.r + d_out for _, d_out in shapes)
            ln = mod.options.get("layer_norm", "none")
            if ln != "none":
                out["layer norms"] = sum(2 * (d_in if ln == "in" else d_out) for d_in, d_out in shapes)
        elif mod.options.get("query_norm", False):
            out["layer norms"] = sum(2 * a.q.in_features for a in attn_sites(anat, mod))
        if mod.composition == "learned":
            out["learned scales"] = n_sites
        return {k: v for k, v in out.items() if v}


def _wire(host: nn.Module, adapter: Adapter, source: Captured | None, into_input: bool) -> None:
    """Sequential (source None): h ← h + Δ(h) at the host's output. Parallel: Δ from the captured sub-layer
    input, added to the host's input (PA(attn): before the output projection) or output (PA(ffn))."""
    if into_input:
        def pre(module: nn.Module, args: tuple) -> tuple:
            return (args[0] + adapter(source.take()).to(args[0].dtype), *args[1:])
        host.register_forward_pre_hook(pre)
        return

    def post(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        x = out if source is None else source.take()
        return out + adapter(x).to(out.dtype)
    host.register_forward_hook(post)


FORM = BottleneckForm()  # registered through the petl_bench.forms entry point, like a plugin's
