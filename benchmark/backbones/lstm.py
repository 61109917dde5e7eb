"""The LSTM baseline of Lu et al. (2021) as a backbone family, so the FPT wrapper and every method apply.

Registered with transformers' Auto classes (`AutoConfig.for_model("lstm")`, `AutoModel.from_config`),
so `benchmark.backbones.registry.build_model("lstm")` builds it like any config-only backbone. It has
no pretrained weights (a baseline runs it with `init: random`). The LSTM is unidirectional, so right
padding never reaches a real position and the attention mask is accepted and ignored.

Two cells (backbone option `cell`): `plain`, torch's `nn.LSTM` without dropout, the paper's stated "3-layer
LSTM"; and `layer-norm`, the reference code's (kzl/universal-computation, `models/lstm.py`, after exe1023/LSTM_LN):
layer norm on the input and recurrent pre-activations and on the cell, dropout 0.1 on every layer's output
(which is also its recurrent state), affine norms and weights drawn uniformly in ±1/√width, and an initial
state drawn afresh each forward from N(0, 2/(d_in + d)) — all as the reference does.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput


class LSTMConfig(PretrainedConfig):
    """Width and depth of a stacked LSTM (the paper: 3 layers, hidden 768) and its cell."""

    model_type = "lstm"

    def __init__(self, hidden_size: int = 768, num_layers: int = 3, dropout: float = 0.0, layer_norm: bool = False,
                 **kwargs: Any) -> None:
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        self.layer_norm = layer_norm
        super().__init__(**kwargs)


class ReferenceLayerNorm(nn.Module):
    """The reference's layer norm: (x - mean) / sqrt(unbiased var + 1e-6), then an affine map whose scale and shift
    both start uniform in ±1/√width (not 1 and 0)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(width)
        self.weight = nn.Parameter(torch.empty(width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(width).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-6)
        return self.weight * x + self.bias


class LayerNormLSTMLayer(nn.Module):
    """One unidirectional layer of the reference's LayerNormLSTM (gates i, f, o then the candidate g)."""

    def __init__(self, d_in: int, d: int, dropout: float) -> None:
        super().__init__()
        self.d_in, self.d, self.dropout = d_in, d, dropout
        self.i2h, self.h2h = nn.Linear(d_in, 4 * d), nn.Linear(d, 4 * d)
        bound = 1.0 / math.sqrt(d)
        for p in (*self.i2h.parameters(), *self.h2h.parameters()):
            nn.init.uniform_(p, -bound, bound)
        self.ln_i2h, self.ln_h2h, self.ln_cell = ReferenceLayerNorm(4 * d), ReferenceLayerNorm(4 * d), \
            ReferenceLayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        std = math.sqrt(2.0 / (self.d_in + self.d))
        h = x.new_empty(batch, self.d).normal_(0, std)
        c = x.new_empty(batch, self.d).normal_(0, std)
        inputs = self.ln_i2h(self.i2h(x))  # row-wise, so all steps at once
        out = []
        for t in range(steps):
            pre = inputs[:, t] + self.ln_h2h(self.h2h(h))
            i, f, o = pre[:, :3 * self.d].sigmoid().chunk(3, dim=-1)
            c = self.ln_cell(c * f + i * pre[:, 3 * self.d:].tanh())
            h = nn.functional.dropout(o * c.tanh(), self.dropout, self.training)
            out.append(h)
        return torch.stack(out, dim=1)


class LSTMModel(PreTrainedModel):
    """A stacked LSTM over `inputs_embeds`, returning every position's hidden state."""

    config_class = LSTMConfig
    base_model_prefix = "lstm_model"  # no such attribute: `base_model` is the model itself

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        d = config.hidden_size
        if getattr(config, "layer_norm", False):
            self.layers = nn.ModuleList(LayerNormLSTMLayer(d, d, config.dropout) for _ in range(config.num_layers))
        else:
            self.lstm = nn.LSTM(d, d, config.num_layers, batch_first=True, dropout=config.dropout)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Keep each cell's own initialisation (PyTorch's uniform ±1/sqrt(hidden); the reference's above)."""

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **kwargs: Any) -> BaseModelOutput:
        if hasattr(self, "layers"):
            hidden = inputs_embeds
            for layer in self.layers:
                hidden = layer(hidden)
        else:
            hidden, _ = self.lstm(inputs_embeds)
        return BaseModelOutput(last_hidden_state=hidden)


AutoConfig.register("lstm", LSTMConfig, exist_ok=True)
AutoModel.register(LSTMConfig, LSTMModel, exist_ok=True)
