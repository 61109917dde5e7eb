"""Baselines: a leaderboard row that runs a method on another backbone, or on other weights, than the task's.

A method says only what trains. Where the backbone comes from is a property of the row being reproduced: Lu et
al.'s LSTM is full training of an LSTM in place of the task's transformer, their "Full" is full training from a
random init, "Random" is FPT's freezing on random weights. So a baseline names
- `method`: a method (built-in, plugin or config-defined) that says what trains;
- `backbone`: a backbone that replaces the task instance's (omitted: the task's own);
- `init`: the weights it starts from: `pretrained`, `random` (same architecture, fresh draw), `stats` (fresh
  weights matched to each pretrained tensor's mean and std) or `bit` (Lu et al.'s Bit-Memory-pretrained backbone,
  which the workflow trains first);
- `backbone_options`: the backbone family's options (`benchmark.backbones.registry.BACKBONE_OPTIONS`), e.g. the
  reference code's layer-norm LSTM.
A grid block lists a baseline among its `methods`, and the leaderboard row carries the baseline's name. Built-in
baselines are below; a config adds its own under `baselines:` with the same keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError

INITS = ("pretrained", "random", "stats", "bit")
KEYS = ("method", "backbone", "init", "backbone_options", "description")


@dataclass(frozen=True)
class Baseline:
    """A named (method, backbone, init) row; the backbone is the task's unless `backbone` names another."""

    name: str
    method: str
    backbone: str | None = None
    init: str = "pretrained"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "petl-bench"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "backbone": self.backbone, "init": self.init,
                "backbone_options": dict(self.backbone_options), "description": self.description,
                "source": self.source}


def baseline_from_dict(name: str, raw: Any, source: str = "config") -> Baseline:
    """A baseline from config; every error names the key and what would be valid. Whether `method` and `backbone`
    exist is checked where the registries are at hand (`benchmark.config`)."""
    where = f"baselines.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a baseline is a mapping with keys {', '.join(KEYS)}, not {raw!r}")
    bad = sorted(set(raw) - set(KEYS))
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; valid: {', '.join(KEYS)}")
    if not isinstance(raw.get("method"), str):
        raise ConfigError(f"{where}.method: required, the name of the method that says what trains (e.g. full, fpt)")
    init = raw.get("init", "pretrained")
    if init not in INITS:
        raise ConfigError(f"{where}.init: {init!r} is not one of {', '.join(INITS)}")
    backbone = raw.get("backbone")
    if backbone is not None and not isinstance(backbone, str):
        raise ConfigError(f"{where}.backbone: {backbone!r} is not a backbone name")
    options = raw.get("backbone_options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.backbone_options: {options!r} is not a mapping of option: value")
    return Baseline(name, raw["method"], backbone, init, dict(options), str(raw.get("description", "")), source)


FPT = "fpt"  # FPT's freezing: layer norms, positions, input and output layers train
RAW: dict[str, dict[str, Any]] = {
    "fpt-random": {"method": FPT, "init": "random",
                   "description": "FPT's 'Random' baseline: same architecture and freezing, random weights"},
    "fpt-stats": {"method": FPT, "init": "stats",
                  "description": "FPT on random weights matched to each pretrained tensor's mean and std"},
    "fpt-bit": {"method": FPT, "init": "bit",
                "description": "FPT on a transformer first trained (from random init) on Bit Memory, then frozen"},
    "vit-init": {"method": FPT, "backbone": "vit-base",
                 "description": "FPT on ViT-base (ImageNet-21k), in place of the task's backbone"},
    "full-scratch": {"method": "full", "init": "random",
                     "description": "Lu et al.'s 'Full': the transformer trained from scratch (random init, every "
                                    "weight trains); `full` is pretrained fine-tuning, a different experiment"},
    "lstm": {"method": "full", "backbone": "lstm", "init": "random",
             "description": "Lu et al.'s LSTM baseline: 3 layers, hidden 768, every weight trains (lr 3e-4)"},
}

BUILTIN: dict[str, Baseline] = {name: baseline_from_dict(name, raw, "petl-bench") for name, raw in RAW.items()}
