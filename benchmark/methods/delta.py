"""Saving and loading only what a method trained (safetensors), and merging it where that is exact.

Merging is declared by each form (`Form.mergeable`, `Form.merge`). A delta file holds every trainable tensor by its parameter name (new `petl_*` tensors, unfrozen
backbone tensors, the task head) plus the method's JSON in the metadata. Loading is strict:
the model must carry the same method (same names and shapes), so a delta never half-loads.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from benchmark.errors import ConfigError
from benchmark.methods.space import FORMS, Applied, Method, method_from_dict, why_not_mergeable

FORMAT = "petl-bench-delta/1"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable tensors by name (tied tensors once), detached, contiguous, on the CPU."""
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_delta(model: nn.Module, path: str | Path, method: Method | None = None) -> Path:
    """Write the trainable tensors to `path` (safetensors) with the method in the metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = trainable_state(model)
    if not tensors:
        raise ConfigError("save_delta: the model has no trainable tensors; apply a method first")
    meta = {"format": FORMAT}
    if method is not None:
        meta["method"] = json.dumps(method.to_dict())
    save_file(tensors, str(path), metadata=meta)
    return path


def delta_method(path: str | Path) -> Method | None:
    """The method stored with a delta, when it was saved with one."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a petl-bench delta (metadata format {meta.get('format')!r}, "
                          f"expected {FORMAT!r})")
    if "method" not in meta:
        return None
    raw = json.loads(meta["method"])
    # what trains; a delta saved before baselines existed may also carry the backbone's `init`, which is not a method's
    return method_from_dict(raw["name"], {k: raw[k] for k in ("compose", "train_all") if k in raw})


def load_delta(model: nn.Module, path: str | Path) -> None:
    """Copy a delta into a model that already carries the same method; any name or shape mismatch is an error."""
    delta_method(path)  # validates the format
    tensors = load_file(str(path))
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or unexpected:
        raise ConfigError(f"{path}: delta does not fit this model (apply the same method first); "
                          f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                          f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
    bad = [n for n, t in tensors.items() if t.shape != params[n].shape]
    if bad:
        raise ConfigError(f"{path}: shape mismatch for {bad[:5]} (a different size or backbone?)")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(params[name].dtype))


def merge(model: nn.Module, method: Method, applied: Applied) -> nn.Module:
    """Fold every mod into the frozen weights as its form declares, and drop the modules its attach added
    (inference then costs nothing extra). Refuses, naming the modification, when any mod cannot be folded."""
    for i, mod in enumerate(method.mods):
        reason = why_not_mergeable(mod)
        if reason is not None:
            raise ConfigError(f"method {method.name!r} cannot be merged: compose[{i}] ({mod.form}@{mod.site}): "
                              f"{reason}")
    for mod, names in zip(method.mods, applied.modules):
        FORMS[mod.form].merge(model, [model.get_submodule(n) for n in names])
        for name in names:
            parent_name, _, child = name.rpartition(".")
            delattr(model.get_submodule(parent_name) if parent_name else model, child)
    return model
