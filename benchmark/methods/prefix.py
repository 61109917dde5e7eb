"""Prefix tuning (Li & Liang 2021) in He et al.'s frame: Δh = softmax(x Wq Pkᵀ) Pv, per head, parallel.

`gated` composition (the default) is the original method: attention runs over the concatenation
[Pk; K], [Pv; V], which equals (1−λ)h + λΔh with λ the attention mass on the prefix.
`add` is the paper's "prefix without gating" ablation: h + softmax(q Pkᵀ) Pv.
The prefix is produced by the paper's reparameterisation MLP unless `reparam: false`:
embedding(l, d) → Linear(d, 800) → tanh → Linear(800, 2·L·d), one MLP per attention kind
(encoder self, decoder self, cross) shared by that kind's L layers. The paper's count
(2·l·d per attention sub-layer) ignores the MLP; `petl-bench params` prints both.
`query_norm: true` (ungated only) is the reference code's "prefix without gating": its query is
q_proj(LN(x)) through a new trainable LayerNorm (`prefix-nogate-ref`); the default reads the
attention's own query, as the paper's formula does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.anatomy import Anatomy, AttnSite, core_of
from benchmark.errors import ConfigError
from benchmark.methods.attention import QueryNorm, attach_head_mod
from benchmark.methods.hooks import device_of
from benchmark.methods.space import Form, Mod, attn_sites, names_in, require

MID = 800  # the paper's reparameterisation width (mid_dim)


class PrefixMLP(nn.Module):
    """Generates the prefixes of every layer of one attention kind from l embeddings."""

    def __init__(self, l: int, d: int, width: int, n_sites: int, mid: int, device: torch.device) -> None:
        super().__init__()
        self.width = width
        self.embedding = nn.Embedding(l, d, device=device)
        self.hidden = nn.Linear(d, mid, device=device)
        self.out = nn.Linear(mid, n_sites * 2 * width, device=device)

    def forward(self, index: int) -> torch.Tensor:
        """Site `index`'s keys and values, (l, 2·width); only its rows of the last layer are computed."""
        h = torch.tanh(self.hidden(self.embedding.weight))
        rows = slice(index * 2 * self.width, (index + 1) * 2 * self.width)
        return F.linear(h, self.out.weight[rows], self.out.bias[rows])


class Prefix(nn.Module):
    """One attention sub-layer's l learned keys and values (its own tensors, or rows of a shared MLP)."""

    def __init__(self, site: AttnSite, l: int, concat: bool, mlp: PrefixMLP | None, index: int,
                 init_std: float, device: torch.device, query_norm: bool = False) -> None:
        super().__init__()
        self.concat, self.l, self.heads, self.head_dim = concat, l, site.n_heads, site.head_dim
        self.query_norm = QueryNorm(site, device) if query_norm else None
        self._mlp, self.index = [mlp], index  # a list keeps the shared MLP out of this module's parameters
        if mlp is None:
            self.kv = nn.Parameter(torch.empty(l, 2 * site.n_heads * site.head_dim, device=device))
            nn.init.normal_(self.kv, std=init_std)

    def table(self) -> torch.Tensor:
        """(2, H, l, hd): keys then values, per head."""
        flat = self.kv if self._mlp[0] is None else self._mlp[0](self.index)
        return flat.view(self.l, 2, self.heads, self.head_dim).permute(1, 2, 0, 3)

    def keys_values(self, batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        kv = self.table().to(dtype)
        return kv[0].expand(batch, -1, -1, -1), kv[1].expand(batch, -1, -1, -1)

    def delta(self, query: torch.Tensor, scaling: float) -> torch.Tensor:
        """Ungated Δh = softmax(q Pkᵀ) Pv per head, (B, T, H, hd); q from the LayerNorm'd input under query_norm."""
        if self.query_norm is not None:
            query = self.query_norm(query.dtype)
        k, v = self.table().to(query.dtype)
        weights = torch.softmax(query @ k.transpose(-1, -2) * scaling, dim=-1)
        return (weights @ v).transpose(1, 2)


class PrefixForm(Form):
    name = "prefix"
    sites = ("attn",)
    compositions = ("gated", "add")  # gated: attention over the concatenation; add: the ungated ablation
    size_key = "l"
    options = ("reparam", "mid", "init_std", "query_norm")
    identity_at_init = False

    def check(self, mod: Mod, where: str) -> None:
        reparam, mid = mod.options.get("reparam", True), mod.options.get("mid", MID)
        query_norm = mod.options.get("query_norm", False)
        if not isinstance(query_norm, bool):
            raise ConfigError(f"{where}: query_norm={query_norm!r} must be true or false")
        if query_norm and mod.composition != "add":
            raise ConfigError(f"{where}: query_norm needs composition 'add' (prefix without gating); the gated "
                              f"prefix is attention over the concatenation, which reads the attention's own query")
        if not isinstance(reparam, bool):
            raise ConfigError(f"{where}: reparam={reparam!r} must be true or false")
        if isinstance(mid, bool) or not isinstance(mid, int) or mid < 1:
            raise ConfigError(f"{where}: mid={mid!r} must be a positive integer")

    def why_not_mergeable(self, mod: Mod) -> str:
        return "prefix keys/values enter the softmax over keys; no weight update of the backbone expresses them"

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        sites = require(attn_sites(anat, mod), anat, mod, "attention sub-layers")
        reparam = mod.options.get("reparam", True)
        device = device_of(sites[0].core)
        added: list[nn.Module] = []
        for kind in dict.fromkeys(a.kind for a in sites):
            group = [a for a in sites if a.kind == kind]
            mlp = None
            if reparam:
                mlp = PrefixMLP(mod.l, anat.d_model, _width(group[0]), len(group), mod.options.get("mid", MID),
                                device)
                core_of(model).add_module(f"petl_prefix_{tag}_{kind}", mlp)
                added.append(mlp)
            for i, site in enumerate(group):
                prefix = Prefix(site, mod.l, mod.composition == "gated", mlp, i,
                                float(mod.options.get("init_std", 0.02)), device,
                                bool(mod.options.get("query_norm", False)))
                site.core.add_module(f"petl_prefix_{tag}", prefix)
                attach_head_mod(model, site.core, prefix)
                added.append(prefix)
        return names_in(model, added)

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        return sum(2 * mod.l * _width(a) for a in attn_sites(anat, mod))

    def formula_trains(self, mod: Mod) -> bool:
        """With the reparameterisation, the MLP trains and generates the l keys/values the formula counts."""
        return not mod.options.get("reparam", True)

    def extras(self, model: nn.Module, anat: Anatomy, mod: Mod) -> dict[str, int]:
        """The MLP's size (the paper leaves it out): per attention kind, embedding l·d, d→mid, mid→2·L·width; the
        reference's query LayerNorms (2·d per sub-layer) under query_norm."""
        norms = ({"layer norms": sum(2 * a.q.in_features for a in attn_sites(anat, mod))}
                 if mod.options.get("query_norm", False) else {})
        if not mod.options.get("reparam", True):
            return norms
        d, mid, l = anat.d_model, mod.options.get("mid", MID), mod.l
        total = 0
        for kind in dict.fromkeys(a.kind for a in attn_sites(anat, mod)):
            group = [a for a in attn_sites(anat, mod) if a.kind == kind]
            out = len(group) * 2 * _width(group[0])
            total += l * d + d * mid + mid + mid * out + out
        return {"reparameterisation": total, **norms}


def _width(site: AttnSite) -> int:
    """All heads' key (= value) width: d for every shipped backbone, n_heads·d_kv for T5 variants."""
    return site.n_heads * site.head_dim


FORM = PrefixForm()  # registered through the petl_bench.forms entry point, like a plugin's
