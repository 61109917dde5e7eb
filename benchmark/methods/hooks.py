"""Forward hooks that graft a modification onto a frozen module without replacing it.

Keeping the backbone's modules in place keeps its parameter names, its loading code and
its exact parameter count; the new tensors live in child modules named `petl_*`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.anatomy import Proj


def device_of(module: nn.Module) -> torch.device:
    """Where a host module's weights live, so new tensors follow it (the `meta` device included: counting a
    method on BART-large then costs no memory)."""
    return next(module.parameters()).device


def add_to_output(proj: Proj, delta: Callable[[torch.Tensor], torch.Tensor]) -> torch.utils.hooks.RemovableHandle:
    """out ← out + delta(x) on the projection's output slice (the whole output unless fused)."""
    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        d = delta(args[0])
        if proj.start or (proj.stop is not None and proj.stop != proj.out_features):
            d = F.pad(d, (proj.start, proj.out_features - proj.start - proj.width))
        return out + d.to(out.dtype)
    return proj.module.register_forward_hook(hook)


def transform_output(module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """out ← fn(out): sequential insertion after a module."""
    module.register_forward_hook(lambda m, args, out: fn(out))


def transform_input(module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """x ← fn(x) before a module (first positional input)."""
    module.register_forward_pre_hook(lambda m, args: (fn(args[0]), *args[1:]))


def first_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """A sub-layer's main input, whether passed positionally (GPT-2, T5, BERT) or as `hidden_states=` (BART)."""
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise TypeError(f"cannot find the input among keyword arguments {sorted(kwargs)}")


class Captured:
    """Holds the latest input of a module, so a parallel branch can read a sub-layer's input at its output.
    `take()` hands it over once, so no activation outlives its forward pass."""

    def __init__(self, module: nn.Module) -> None:
        self.value: torch.Tensor | None = None
        module.register_forward_pre_hook(self._store, with_kwargs=True)

    def _store(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.value = first_input(args, kwargs)

    def take(self) -> torch.Tensor:
        value, self.value = self.value, None
        if value is None:
            raise RuntimeError("parallel branch ran before its sub-layer's input was seen")
        return value


def weight_delta_into(proj: Proj, delta_out_in: torch.Tensor) -> None:
    """W ← W + ΔW for a (out×in) ΔW, respecting Conv1D's transposed storage and fused slices."""
    w = proj.module.weight
    with torch.no_grad():
        if proj.transposed:
            w[:, proj.start:proj.start + proj.width] += delta_out_in.T.to(w.dtype)
        else:
            w[proj.start:proj.start + proj.width, :] += delta_out_in.to(w.dtype)


def project(proj: Proj, x: torch.Tensor) -> torch.Tensor:
    """The frozen projection's output slice for input `x`, computed from its weights (no hooks run), in the weights'
    dtype: how a form re-reads a sub-layer's projection on an input of its own (the reference's query LayerNorm)."""
    w, b = proj.module.weight, proj.module.bias
    rows = slice(proj.start, proj.start + proj.width)
    x = x.to(w.dtype)
    if proj.transposed:  # Conv1D: weight in×out
        return x @ w[:, rows] + (b[rows] if b is not None else 0)
    return F.linear(x, w[rows], b[rows] if b is not None else None)

