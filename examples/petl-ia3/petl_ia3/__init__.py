"""(IA)³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context
Learning") as a petl-bench plugin: learned vectors rescale the keys, the values and the FFN's intermediate
activations, h ← ℓ ⊙ h. The vectors start at ones, so the model starts as the frozen backbone.

Neither He et al. nor Lu et al. ran it, so it is a new functional form (`ia3`) rather than a point of the
existing space; the method `ia3` composes it at the key/value projections and at the FFN.
"""
from __future__ import annotations

import torch
from torch import nn

from benchmark.backbones.anatomy import Anatomy, Proj
from benchmark.methods.hooks import device_of, transform_input
from benchmark.methods.space import Form, Method, Mod, attn_sites, method_from_dict, names_in, register_form

__version__ = "0.1.0"
ATTN_PROJS = {"k": ("k",), "v": ("v",), "kv": ("k", "v")}


class Rescale(nn.Module):
    """One learned vector ℓ (ones at init) that multiplies a slice of features elementwise."""

    def __init__(self, width: int, device: torch.device) -> None:
        super().__init__()
        self.vector = nn.Parameter(torch.ones(width, device=device))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.vector.to(h.dtype)


def rescale_output(proj: Proj, rescale: Rescale) -> None:
    """out[..., start:stop] ← ℓ ⊙ out[..., start:stop]; a fused projection (GPT-2's c_attn) keeps its other
    slices untouched."""
    stop = proj.stop if proj.stop is not None else proj.out_features

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        if proj.start == 0 and stop == out.shape[-1]:
            return rescale(out)
        return torch.cat([out[..., :proj.start], rescale(out[..., proj.start:stop]), out[..., stop:]], dim=-1)

    proj.module.register_forward_hook(hook)


class IA3Form(Form):
    """The functional form: sites `k`, `v`, `kv` (attention projections) and `ffn` (the intermediate
    activations, i.e. the input of the FFN's down projection). No size knob: one vector per site."""

    name = "ia3"
    sites = (*ATTN_PROJS, "ffn")
    families = ("bert", "roberta", "gpt2", "bart", "mbart", "t5", "longformer", "vit")

    def why_not_mergeable(self, mod: Mod) -> str:
        return ("(IA)³ could fold into W_k, W_v and W_down, but the harness merges only low-rank deltas; "
                "the vectors stay as modules")

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        added = []
        if mod.site == "ffn":
            for f in anat.ffn:
                rescale = Rescale(f.down.in_features, device_of(f.down.module))
                f.down.module.add_module(f"petl_ia_{tag}_ffn", rescale)
                transform_input(f.down.module, rescale)
                added.append(rescale)
            return names_in(model, added)
        for a in attn_sites(anat, mod):
            for p in ATTN_PROJS[mod.site]:
                proj: Proj = getattr(a, p)
                rescale = Rescale(proj.width, device_of(proj.module))
                proj.module.add_module(f"petl_ia_{tag}_{p}", rescale)
                rescale_output(proj, rescale)
                added.append(rescale)
        return names_in(model, added)

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        """d_k + d_v per attention sub-layer, d_ff per FFN sub-layer."""
        if mod.site == "ffn":
            return sum(f.down.in_features for f in anat.ffn)
        return sum(getattr(a, p).width for a in attn_sites(anat, mod) for p in ATTN_PROJS[mod.site])


FORM = register_form(IA3Form())

IA3: Method = method_from_dict("ia3", {
    "compose": [{"form": "ia3", "site": "kv"}, {"form": "ia3", "site": "ffn"}],
    "description": "(IA)³: learned rescaling of keys, values and FFN activations (Liu et al. 2022)",
})
