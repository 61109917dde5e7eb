"""Unfreezing existing tensors: FPT's layer norms / positions / input layer (Lu et al. 2021) and BitFit's biases.

No new parameters: the 'modification' is that some pretrained tensors train. The count
is the exact size of what is unfrozen (FPT's paper counts only the position rows used;
`benchmark.tasks.fpt` reports that variant beside it).
"""
from __future__ import annotations

from torch import nn

from benchmark.backbones.anatomy import Anatomy, core_of
from benchmark.errors import ConfigError
from benchmark.methods.space import Form, Mod, names_in


def _modules(model: nn.Module, anat: Anatomy, site: str) -> list[nn.Module]:
    """The modules whose parameters a site unfreezes."""
    if site == "layer_norm":
        return anat.layer_norms
    if site == "positions":
        return anat.positions
    if site == "input":
        return [anat.input_layer] if anat.input_layer is not None else []
    if site == "attention":
        return [a.core for a in anat.attn]
    if site == "ffn":
        return [m for f in anat.ffn for m in (f.up.module, f.down.module)]
    if site == "embeddings":
        return anat.token_embeddings
    if site == "all":
        return [core_of(model)]
    return []


def _params(model: nn.Module, anat: Anatomy, site: str) -> list[nn.Parameter]:
    """A site's tensors, never one the model does not read (`Anatomy.unused`: FPT's idle token table)."""
    if site == "embeddings" and anat.unused:
        raise ConfigError("unfreeze@embeddings: this model feeds the backbone from its own input layer (the FPT "
                          "wrapper), so the backbone's token embeddings are never read; unfreeze 'input' instead")
    unused = {id(p) for m in anat.unused for p in m.parameters()}
    if site == "bias":
        return [p for n, p in core_of(model).named_parameters() if n.endswith("bias") and id(p) not in unused]
    seen: dict[int, nn.Parameter] = {}
    for m in _modules(model, anat, site):
        for p in m.parameters():
            if id(p) not in unused:
                seen[id(p)] = p
    return list(seen.values())


class Unfreeze(Form):
    name = "unfreeze"
    sites = ("layer_norm", "positions", "input", "attention", "ffn", "bias", "embeddings", "all")
    mergeable = True  # the trained tensors are the backbone's own: nothing to fold

    def unfreezes(self, model: nn.Module, anat: Anatomy, mod: Mod) -> list[nn.Parameter]:
        return _params(model, anat, mod.site)

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        params = _params(model, anat, mod.site)
        if not params and mod.site == "bias":
            raise ConfigError(f"unfreeze@bias: backbone {anat.family!r} has no bias tensors (T5 has none), so "
                              f"BitFit would train nothing; pick another method")
        return names_in(model, params)

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        return sum(p.numel() for p in _params(model, anat, mod.site))


FORM = Unfreeze()  # registered through the petl_bench.forms entry point, like a plugin's
