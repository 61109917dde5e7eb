"""Low-rank updates (LoRA, Hu et al. 2021): Δh = s · x W_down W_up on chosen projections, parallel to them."""
from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.backbones.anatomy import Anatomy, Proj
from benchmark.errors import ConfigError
from benchmark.methods.hooks import add_to_output, device_of, weight_delta_into
from benchmark.methods.space import Form, Mod, attn_sites, names_in, require

# site → which projections of each attention sub-layer / FFN sub-layer it touches
ATTN_PROJS = {"attn": "qv", "q": "q", "k": "k", "v": "v", "o": "o", "qv": "qv", "kv": "kv", "qkv": "qkv"}
FFN_PROJS = {"ffn": ("up", "down"), "ffn_up": ("up",), "ffn_down": ("down",)}


class LowRankDelta(nn.Module):
    """x ↦ s · dropout(x) Aᵀ Bᵀ with A (r×in) Kaiming-uniform and B (out×r) zero, so it starts as identity."""

    def __init__(self, proj: Proj, r: int, scale: float, dropout: float) -> None:
        super().__init__()
        self.proj = [proj]  # a list keeps the host out of this module's parameters
        device = device_of(proj.module)
        self.down = nn.Linear(proj.in_features, r, bias=False, device=device)
        self.up = nn.Linear(r, proj.width, bias=False, device=device)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = scale
        self.dropout = nn.Dropout(dropout)
        self.handle = add_to_output(proj, self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(self.dropout(x.to(self.down.weight.dtype)))) * self.scale

    def merge(self) -> None:
        """Fold s·BA into the frozen weight and drop the hook: inference then costs nothing extra."""
        weight_delta_into(self.proj[0], self.scale * self.up.weight @ self.down.weight)
        self.handle.remove()


def _targets(anat: Anatomy, mod: Mod) -> list[tuple[str, Proj]]:
    if mod.site in FFN_PROJS:
        return [(f"{f.name}.{p}", getattr(f, p)) for f in anat.ffn for p in FFN_PROJS[mod.site]]
    return [(f"{a.name}.{p}", getattr(a, p)) for a in attn_sites(anat, mod) for p in ATTN_PROJS[mod.site]]


class LowRank(Form):
    name = "lowrank"
    sites = tuple(ATTN_PROJS) + tuple(FFN_PROJS)
    compositions = ("add", "scaled")  # s = alpha/r when alpha is given, else s
    size_key = "r"
    options = ("dropout",)
    mergeable = True

    def check(self, mod: Mod, where: str) -> None:
        if mod.alpha is not None and mod.s != 1.0:
            raise ConfigError(f"{where}: give either alpha (s = alpha/r, LoRA's convention) or s, not both")

    def scale(self, mod: Mod) -> float:
        """LoRA's s = alpha / r when alpha is given, else the mod's s."""
        return mod.alpha / mod.r if mod.alpha is not None else mod.s

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        deltas = []
        for where, proj in require(_targets(anat, mod), anat, mod, "projections"):
            delta = LowRankDelta(proj, mod.r, self.scale(mod), float(mod.options.get("dropout", 0.0)))
            proj.module.add_module(f"petl_lowrank_{tag}_{where.rsplit('.', 1)[-1]}", delta)
            deltas.append(delta)
        return names_in(model, deltas)

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        return sum(mod.r * (p.in_features + p.width) for _, p in _targets(anat, mod))

    def merge(self, model: nn.Module, modules: list[nn.Module]) -> None:
        for delta in modules:
            delta.merge()


FORM = LowRank()  # registered through the petl_bench.forms entry point, like a plugin's
