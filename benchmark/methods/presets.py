"""The named methods of both papers as presets over the design space (registered via entry points).

Default sizes are the paper rows each name is best known for (He et al. Tables 3-6 on BART-large);
any other size is a budget (`l30-r512`, `0.5pct`). Bottlenecks default to the reference code's
`lora` init (Kaiming down, zero up), so every adapter starts as the frozen backbone's function.

The reference code (jxhe/unify-parameter-efficient-tuning) builds some modules in ways the paper does not
state; each such method has a `-ref` twin with the reference's choices, to put beside the default in a grid
block (it is its own row on the leaderboard, never the paper cell of the default): attention adapters with an
input LayerNorm, "bert" init (N(0, 0.02), so not identity at init) and the attention's dropout after the ReLU;
Houlsby's FFN adapter with "bert" init and the layer's dropout; multi-head PA and prefix without gating reading
their query through a trainable LayerNorm, multi-head PA unscaled.
"""
from __future__ import annotations

from typing import Any

from benchmark.methods.space import Method, method_from_dict

FPT_UNFREEZE = [{"form": "unfreeze", "site": s} for s in ("layer_norm", "positions", "input")]


def _adapter(site: str, insertion: str, r: int, **extra: Any) -> dict[str, Any]:
    return {"form": "bottleneck", "site": site, "insertion": insertion, "r": r, **extra}


PREFIX_30 = {"form": "prefix", "site": "attn", "l": 30}
ATTN_REF = {"layer_norm": "in", "init": "bert", "dropout": "attention"}  # the reference's attention adapter
SCALED_PA_FFN = _adapter("ffn", "parallel", 512, composition="scaled", s=4)
LORA_FFN = {"form": "lowrank", "site": "ffn", "r": 102, "composition": "scaled", "s": 4}

RAW: dict[str, dict[str, Any]] = {
    "full": {"train_all": True, "description": "full fine-tuning: every backbone tensor trains"},
    "fpt": {"compose": FPT_UNFREEZE,
            "description": "Lu et al.: frozen pretrained transformer; layer norms, positions, input and output "
                           "layers train"},
    "bitfit": {"compose": [{"form": "unfreeze", "site": "bias"}],
               "description": "BitFit: only the backbone's biases train"},
    "prompt": {"compose": [{"form": "prompt", "site": "input", "l": 200}],
               "description": "prompt tuning: l=200 learned input vectors (He et al. Table 6, 0.1%)"},
    "prefix": {"compose": [{"form": "prefix", "site": "attn", "l": 200}],
               "description": "prefix tuning, l=200, MLP reparameterisation (mid 800), attention over the "
                              "concatenation (Table 6, 3.6%)"},
    "prefix-nogate": {"compose": [{**PREFIX_30, "composition": "add"}],
                      "description": "prefix tuning without gating: h + softmax(q Pkᵀ)Pv, l=30 (Table 4, 0.1%)"},
    "adapter-houlsby": {"compose": [_adapter("attn", "sequential", 200), _adapter("ffn", "sequential", 200)],
                        "description": "Houlsby adapters: sequential after attention and FFN, r=200"},
    "adapter-pfeiffer": {"compose": [_adapter("ffn", "sequential", 600)],
                         "description": "Pfeiffer adapter: sequential after the FFN, r=600 (Table 6, 7.2%)"},
    "sa-attn": {"compose": [_adapter("attn", "sequential", 200)],
                "description": "sequential adapter after attention, r=200 (Table 3, 3.6%)"},
    "sa-ffn": {"compose": [_adapter("ffn", "sequential", 200)],
               "description": "sequential adapter after the FFN, r=200 (Table 3, 2.4%)"},
    "lora": {"compose": [{"form": "lowrank", "site": "attn", "r": 16, "alpha": 32, "dropout": 0.1}],
             "description": "LoRA on the query and value projections (r=16, alpha=32, dropout 0.1)"},
    "lora-ffn": {"compose": [LORA_FFN],
                 "description": "LoRA on both FFN projections, r=102, fixed s=4 (Tables 5/12, 6.1%)"},
    "pa-attn": {"compose": [_adapter("attn", "parallel", 200)],
                "description": "parallel adapter on attention: reads its input, adds before the output "
                               "projection, r=200 (Table 3, 3.6%)"},
    "pa-ffn": {"compose": [_adapter("ffn", "parallel", 1024)],
               "description": "parallel adapter on the FFN, r=1024 (Table 6, 12.3%)"},
    "mh-pa": {"compose": [_adapter("attn_heads", "parallel", 200)],
              "description": "multi-head parallel adapter: ReLU(x Wq P_kᵀ)P_v per head, r=200 (Table 4, 3.6%)"},
    "scaled-pa": {"compose": [SCALED_PA_FFN],
                  "description": "scaled parallel adapter on the FFN, s=4, r=512 (Table 5, 6.1%)"},
    "scaled-pa-learned": {"compose": [_adapter("ffn", "parallel", 512, composition="learned")],
                          "description": "parallel adapter on the FFN with a learned scale s (starts at 1), "
                                         "r=512 (Table 5)"},
    "sa-attn-ref": {"compose": [_adapter("attn", "sequential", 200, **ATTN_REF)],
                    "description": "sa-attn as the reference code builds it: input LayerNorm, bert init, the "
                                   "attention's dropout after the ReLU"},
    "pa-attn-ref": {"compose": [_adapter("attn", "parallel", 200, **ATTN_REF)],
                    "description": "pa-attn as the reference code builds it: input LayerNorm, bert init, the "
                                   "attention's dropout after the ReLU"},
    "adapter-houlsby-ref": {"compose": [_adapter("attn", "sequential", 200, **ATTN_REF),
                                        _adapter("ffn", "sequential", 200, init="bert", dropout="hidden")],
                            "description": "Houlsby adapters as the reference code builds them: the attention "
                                           "adapter with input LayerNorm, bert init and dropout; the FFN adapter "
                                           "with bert init and dropout"},
    "mh-pa-ref": {"compose": [_adapter("attn_heads", "parallel", 200, query_norm=True, query_scaling=False)],
                  "description": "mh-pa as the reference code computes it: the query through a trainable "
                                 "LayerNorm, unscaled"},
    "prefix-nogate-ref": {"compose": [{**PREFIX_30, "composition": "add", "query_norm": True}],
                          "description": "prefix-nogate as the reference code computes it: the query through a "
                                         "trainable LayerNorm"},
    "mam": {"compose": [PREFIX_30, SCALED_PA_FFN],
            "description": "MAM adapter: prefix l=30 on attention + scaled PA (s=4) r=512 on the FFN "
                           "(Table 6, 6.7%)"},
    "pa-attn+pa-ffn": {"compose": [_adapter("attn", "parallel", 30), _adapter("ffn", "parallel", 512)],
                       "description": "PA(attn) r=30 + PA(ffn) r=512 (Table 6, 6.7%)"},
    "prefix+lora-ffn": {"compose": [PREFIX_30, LORA_FFN],
                        "description": "prefix l=30 + LoRA(ffn) r=102, s=4 (Table 6, 6.7%)"},
}

PRESETS: dict[str, Method] = {name: method_from_dict(name, raw) for name, raw in RAW.items()}
for _name, _method in PRESETS.items():
    object.__setattr__(_method, "source", "petl-bench")
