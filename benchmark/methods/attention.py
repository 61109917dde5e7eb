"""Per-head access to attention, for the forms that act inside it (prefix tuning, multi-head PA).

Hooks only see a sub-layer's inputs and outputs; prefix tuning needs the per-head keys and
values. transformers ≥ 5 routes every attention computation through a named function
(`config._attn_implementation`), so we register one, `petl_sdpa`: it looks up the modules
attached to the attention core it is called for, prepends their keys/values (extending the
mask, with the prefix always visible), runs transformers' own SDPA, and adds per-head Δh.
Backbones without any such mod keep their original implementation.
"""
from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.anatomy import core_of
from benchmark.errors import ConfigError

NAME = "petl_sdpa"
_REGISTERED = False


class HeadMod(Protocol):
    """A module acting inside attention. `concat` mods give keys/values to prepend (B, H, l, hd); the others
    give Δh per head (B, T, H, hd) from the (unscaled) queries."""

    concat: bool

    def keys_values(self, batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]: ...

    def delta(self, query: torch.Tensor, scaling: float) -> torch.Tensor: ...


class QueryNorm(nn.Module):
    """The reference code's query for multi-head PA and ungated prefix tuning (jxhe/unify-parameter-efficient-tuning,
    `ef_transform_layer_norm`): q_proj(LN(x)), a new trainable LayerNorm on the attention sub-layer's input x and
    the frozen query projection reused, per head (B, H, T, hd); the attention itself keeps its own query."""

    def __init__(self, site: Any, device: torch.device) -> None:
        from benchmark.methods.hooks import Captured

        super().__init__()
        self.norm = nn.LayerNorm(site.q.in_features, device=device)
        self._site = [site]  # a list keeps the frozen backbone out of this module
        self._input = Captured(site.core)

    def forward(self, dtype: torch.dtype) -> torch.Tensor:
        from benchmark.methods.hooks import project

        site = self._site[0]
        x = self._input.take()
        q = project(site.q, self.norm(x.to(self.norm.weight.dtype)))
        return q.view(*q.shape[:-1], site.n_heads, site.head_dim).transpose(1, 2).to(dtype)


def _register() -> None:
    """Register `petl_sdpa` (and its mask builder, SDPA's) once per process."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, petl_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    _REGISTERED = True


def attach_head_mod(model: nn.Module, core: nn.Module, mod: nn.Module) -> None:
    """Make `mod` act inside attention module `core` (an AttnSite.core) and switch the model to `petl_sdpa`."""
    _register()
    if not hasattr(core, "_petl_heads"):
        core._petl_heads = []
    core._petl_heads.append(mod)
    _switch(model)


def _switch(model: nn.Module) -> None:
    """Point every attention layer's config at `petl_sdpa` (wrappers that are not PreTrainedModels, like FPT's
    ViT sequence model, share their config object with their layers)."""
    backbone = core_of(model)
    setter = getattr(backbone, "set_attn_implementation", None)
    if setter is not None and backbone.config._attn_implementation != NAME:
        setter(NAME)
    configs = [m.config for m in backbone.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")]
    if not configs:
        raise ConfigError(f"{type(backbone).__name__} does not route attention through transformers' "
                          f"AttentionInterface; prefix and multi-head forms cannot apply to it")
    for cfg in configs:
        if cfg._attn_implementation != NAME:
            cfg._attn_implementation = NAME


def _causal(module: nn.Module, kw: dict[str, Any]) -> bool:
    flag = kw.get("is_causal")
    return bool(getattr(module, "is_causal", True) if flag is None else flag)


def extend_mask(module: nn.Module, mask: torch.Tensor | None, query: torch.Tensor, n_keys: int, n_prefix: int,
                kw: dict[str, Any]) -> torch.Tensor | None:
    """The mask for [prefix; keys]: prefix columns always visible. A causal layer whose mask SDPA would have
    implied (mask None) gets an explicit one, aligned bottom-right as with a cache."""
    if mask is None:
        tq = query.shape[2]
        if not (_causal(module, kw) and tq > 1):
            return None
        rows = torch.arange(tq, device=query.device)[:, None] + (n_keys - tq)
        mask = (torch.arange(n_keys, device=query.device)[None, :] <= rows)[None, None]
    visible = torch.ones(*mask.shape[:-1], n_prefix, dtype=mask.dtype, device=mask.device)
    if mask.dtype != torch.bool:
        visible = torch.zeros_like(visible)
    return torch.cat([visible, mask], dim=-1)


def petl_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, **kw: Any) -> tuple[torch.Tensor, None]:
    """SDPA over [prefix keys/values; keys/values] plus per-head Δh; exactly SDPA when nothing is attached."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    heads = getattr(module, "_petl_heads", ())
    concat = [h for h in heads if h.concat]
    if concat:
        pairs = [h.keys_values(query.shape[0], key.dtype) for h in concat]
        n = sum(k.shape[2] for k, _ in pairs)
        attention_mask = extend_mask(module, attention_mask, query, key.shape[2], n, kw)
        key = torch.cat([*(k for k, _ in pairs), key], dim=2)
        value = torch.cat([*(v for _, v in pairs), value], dim=2)
        if kw.get("position_bias") is not None:  # T5: prefix keys carry no relative-position bias
            kw["position_bias"] = F.pad(kw["position_bias"], (n, 0))
        if attention_mask is not None:
            kw["is_causal"] = False
    out, weights = sdpa_attention_forward(module, query, key, value, attention_mask, **kw)
    scaling = kw.get("scaling") or query.shape[-1] ** -0.5
    for h in heads:
        if not h.concat:
            out = out + h.delta(query, scaling).to(out.dtype)
    return out, weights
