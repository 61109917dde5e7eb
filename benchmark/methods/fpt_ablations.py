"""Lu et al. (2021)'s ablations and baselines as presets: what trains, and where the backbone comes from.

Successive unfreezing (Table "ablation"): output layer only → + layer norms → + input layer →
+ positions (= `fpt`, defined with the built-ins) ; then `fpt` plus feed-forward and/or attention.
Lu et al.'s "Full" is `full-scratch` (random init, everything trains; on CIFAR-10 a 3-layer GPT-2, the
`gpt2-3layer` backbone). Baselines change the backbone's weights (`init`): statistics-only (`stats`), Bit-Memory-pretrained
(`bit`: the workflow pretrains and passes the checkpoint), ViT-initialised and the LSTM
(`backbone:<name>`: the architecture itself is replaced). The output layer is the task head, so
every method trains it.
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
    "fpt-stats": {"compose": _unfreeze(*FPT), "init": "stats",
                  "description": "FPT on random weights matched to each pretrained tensor's mean and std"},
    "fpt-bit": {"compose": _unfreeze(*FPT), "init": "bit",
                "description": "FPT on a transformer first trained (from random init) on Bit Memory, then frozen"},
    "vit-init": {"compose": _unfreeze(*FPT), "init": "backbone:vit-base",
                 "description": "FPT on ViT-base (ImageNet-21k), in place of the task's backbone"},
    "full-scratch": {"train_all": True, "init": "random",
                     "description": "Lu et al.'s 'Full': the transformer trained from scratch (random init, every "
                                    "weight trains); `full` is pretrained fine-tuning, a different experiment"},
    "lstm": {"train_all": True, "init": "backbone:lstm",
             "description": "Lu et al.'s LSTM baseline: 3 layers, hidden 768, every weight trains (lr 3e-4)"},
}

PRESETS: dict[str, Method] = {name: method_from_dict(name, raw) for name, raw in RAW.items()}
for _method in PRESETS.values():
    object.__setattr__(_method, "source", "petl-bench")
