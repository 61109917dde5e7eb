"""The named methods of both papers as presets over the design space (registered via entry points)."""
from __future__ import annotations

from typing import Any

from benchmark.methods.space import Method, method_from_dict

FPT_UNFREEZE = [{"form": "unfreeze", "site": s} for s in ("layer_norm", "positions", "input")]

RAW: dict[str, dict[str, Any]] = {
    "full": {"train_all": True, "description": "full fine-tuning: every backbone tensor trains"},
    "fpt": {"compose": FPT_UNFREEZE,
            "description": "Lu et al.: frozen pretrained transformer; layer norms, positions, input and output "
                           "layers train"},
    "fpt-random": {"compose": FPT_UNFREEZE, "init": "random",
                   "description": "FPT's 'Random' baseline: same architecture and freezing, random weights"},
    "bitfit": {"compose": [{"form": "unfreeze", "site": "bias"}],
               "description": "BitFit: only the backbone's biases train"},
    "lora": {"compose": [{"form": "lowrank", "site": "attn", "r": 16, "alpha": 32, "dropout": 0.1}],
             "description": "LoRA on the query and value projections (r=16, alpha=32, dropout 0.1)"},
    "lora-ffn": {"compose": [{"form": "lowrank", "site": "ffn", "r": 102, "alpha": 408}],
                 "description": "LoRA on both FFN projections, s=4 (He et al. Table 5)"},
}

PRESETS: dict[str, Method] = {name: method_from_dict(name, raw) for name, raw in RAW.items()}
for _name, _method in PRESETS.items():
    object.__setattr__(_method, "source", "petl-bench")
