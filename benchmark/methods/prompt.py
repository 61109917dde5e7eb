"""Prompt tuning (Lester et al. 2021): l learned input vectors prepended to the token embeddings.

Encoder-decoder backbones (BART, mBART, T5) get the prompt on the encoder input, and the decoder's
cross-attention sees it (its mask is extended), as in He et al.'s BART runs. Encoder-only and
decoder-only backbones get it on their input and the prompt positions are dropped from the output,
so task heads that read position 0 (BERT's pooler, RoBERTa's head) or the last token (GPT-2) stay
aligned. A model that feeds the backbone from its own input layer (`Anatomy.input_layer`, the FPT
wrapper) and reads fixed output positions rejects prompt tuning. Count: l·d (the paper's).
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from benchmark.backbones.anatomy import Anatomy, core_of
from benchmark.errors import ConfigError
from benchmark.methods.space import Form, Mod, names_in

INITS = ("vocab", "normal")


class Prompt(nn.Module):
    """l vectors of width d, initialised from random vocabulary rows (Lester et al.'s choice) or N(0, 0.02)."""

    def __init__(self, l: int, embeddings: nn.Embedding, init: str) -> None:
        super().__init__()
        table = embeddings.weight
        self.weight = nn.Parameter(torch.empty(l, table.shape[1], device=table.device))
        with torch.no_grad():
            if init == "vocab":
                rows = torch.randint(0, table.shape[0], (l,)).to(table.device)
                self.weight.copy_(table[rows].float())
            else:
                nn.init.normal_(self.weight, std=0.02)

    def prepend(self, kwargs: dict[str, Any], embed: nn.Module) -> dict[str, Any]:
        """Replace input_ids by [prompt; embeddings] and extend the padding mask and token types."""
        if kwargs.get("position_ids") is not None:
            raise ValueError("prompt tuning: explicit position_ids cannot be shifted for the prompt; leave them None")
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = embed(kwargs["input_ids"])
        batch, length, l = embeds.shape[0], embeds.shape[1], self.weight.shape[0]
        prompt = self.weight.to(embeds.dtype).expand(batch, -1, -1)
        mask = kwargs.get("attention_mask")
        if mask is None:
            mask = torch.ones(batch, length, dtype=torch.long, device=embeds.device)
        if mask.dim() != 2:
            raise ValueError(f"prompt tuning needs a 2-D padding mask, got shape {tuple(mask.shape)}")
        out = {**kwargs, "input_ids": None, "inputs_embeds": torch.cat([prompt, embeds], dim=1),
               "attention_mask": torch.cat([mask.new_ones(batch, l), mask], dim=1)}
        if kwargs.get("token_type_ids") is not None:
            types = kwargs["token_type_ids"]
            out["token_type_ids"] = torch.cat([types.new_zeros(batch, l), types], dim=1)
        return out


def _kwargs(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Positional arguments of `module.forward` as keywords, so hooks can edit them by name."""
    if not args:
        return dict(kwargs)
    bound = inspect.signature(module.forward).bind_partial(*args, **kwargs)
    out = {}
    for name, value in bound.arguments.items():
        out.update(value if bound.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD else {name: value})
    return out


def _no_cache(kwargs: dict[str, Any]) -> None:
    past = kwargs.get("past_key_values")
    if past is not None and past.get_seq_length() > 0:
        raise ValueError("prompt tuning on a decoder-only backbone does not support incremental decoding with a "
                         "cache; run full-sequence forwards")


class PromptForm(Form):
    name = "prompt"
    sites = ("input",)  # extra input tokens: no insertion or composition to choose
    size_key = "l"
    options = ("init",)
    identity_at_init = False

    def check(self, mod: Mod, where: str) -> None:
        if mod.options.get("init", "vocab") not in INITS:
            raise ConfigError(f"{where}: init={mod.options['init']!r} is not one of {INITS}")

    def why_not_mergeable(self, mod: Mod) -> str:
        return "prompt vectors are extra input tokens; no weight update of the backbone expresses them"

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        if anat.input_layer is not None:
            raise ConfigError("form 'prompt' needs the backbone's token embeddings as its input, but this model "
                              "feeds the backbone from its own input layer and reads fixed output positions (the "
                              "FPT wrapper); use prefix, an adapter, LoRA or unfreeze instead")
        core = core_of(model)
        embed = core.get_input_embeddings()
        prompt = Prompt(mod.l, embed, mod.options.get("init", "vocab"))
        core.add_module(f"petl_prompt_{tag}", prompt)
        if getattr(core, "encoder", None) is not None and getattr(core, "decoder", None) is not None:
            _wire_encoder_decoder(core, prompt, embed)
        else:
            _wire_single_stack(core, prompt, embed)
        return names_in(model, [prompt])

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        return mod.l * anat.d_model


def _wire_encoder_decoder(core: nn.Module, prompt: Prompt, embed: nn.Module) -> None:
    """Prompt on the encoder input; the decoder's cross-attention mask grows to match (also under generate)."""
    encoder, decoder = core.get_encoder(), core.get_decoder()
    l = prompt.weight.shape[0]

    def before_encoder(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return (), prompt.prepend(_kwargs(module, args, kwargs), embed)

    def before_decoder(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kw = _kwargs(module, args, kwargs)
        mask, states = kw.get("encoder_attention_mask"), kw.get("encoder_hidden_states")
        if mask is not None and states is not None and mask.dim() == 2 and mask.shape[1] + l == states.shape[1]:
            kw["encoder_attention_mask"] = torch.cat([mask.new_ones(mask.shape[0], l), mask], dim=1)
        return (), kw

    encoder.register_forward_pre_hook(before_encoder, with_kwargs=True)
    decoder.register_forward_pre_hook(before_decoder, with_kwargs=True)


def _wire_single_stack(core: nn.Module, prompt: Prompt, embed: nn.Module) -> None:
    """Prompt on the input; its positions are cut from the outputs (and BERT's pooler re-reads position 0)."""
    l = prompt.weight.shape[0]

    def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kw = _kwargs(module, args, kwargs)
        _no_cache(kw)
        return (), prompt.prepend(kw, embed)

    def after(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> Any:
        if not hasattr(out, "last_hidden_state"):
            raise ValueError("prompt tuning needs the backbone to return a ModelOutput (return_dict=True)")
        out["last_hidden_state"] = out.last_hidden_state[:, l:]
        if out.get("hidden_states") is not None:
            out["hidden_states"] = tuple(h[:, l:] for h in out.hidden_states)
        if out.get("pooler_output") is not None and getattr(module, "pooler", None) is not None:
            out["pooler_output"] = module.pooler(out.last_hidden_state)
        return out

    core.register_forward_pre_hook(before, with_kwargs=True)
    core.register_forward_hook(after, with_kwargs=True)


FORM = PromptForm()  # registered through the petl_bench.forms entry point, like a plugin's
