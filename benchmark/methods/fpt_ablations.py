"""Lu et al. (2021)'s ablations as presets: what trains.

Successive unfreezing (Table "ablation"): output layer only → + layer norms → + input layer →
+ positions (= `fpt`, defined with the built-ins) ; then `fpt` plus feed-forward and/or attention.
Their baselines (Random, statistics-only, Bit-pretrained, ViT-initialised, LSTM, and "Full" trained from
scratch) change the backbone or its weights, not what trains: they are `benchmark.baselines`. The output
layer is the task head, so every method trains it.
"""
from __future__ import annotations

from typing import Any

from benchmark.methods.space import Method, method_from_dict


def _unfreeze(*sites: str) -> list[dict[str, str]]:
    return [{"form": "unfreeze", "site": s} for s in sites]


FPT = ("layer_norm", "positions", "input")

RAW: dict[str, dict[str, Any]] = {
    "fpt-output-only": {"compose": [], "description": "FPT ablation: only the output layer trains"},
    "fpt-ln": {"compose": _unfreeze("layer_norm"), "description": "FPT ablation: output layer + layer norms"},
    "fpt-ln-input": {"compose": _unfreeze("layer_norm", "input"),
                     "description": "FPT ablation: output + layer norms + input layer (fpt = this + positions)"},
    "fpt-ffn": {"compose": _unfreeze(*FPT, "ffn"), "description": "FPT + the feed-forward weights train"},
    "fpt-attn": {"compose": _unfreeze(*FPT, "attention"), "description": "FPT + the self-attention weights train"},
    "fpt-both": {"compose": _unfreeze(*FPT, "ffn", "attention"),
                 "description": "FPT + feed-forward and self-attention train"},
}

PRESETS: dict[str, Method] = {name: method_from_dict(name, raw) for name, raw in RAW.items()}
for _method in PRESETS.values():
    object.__setattr__(_method, "source", "petl-bench")
