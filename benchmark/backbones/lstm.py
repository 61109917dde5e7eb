"""The LSTM baseline of Lu et al. (2021) as a backbone family, so the FPT wrapper and every method apply.

Registered with transformers' Auto classes (`AutoConfig.for_model("lstm")`, `AutoModel.from_config`),
so `benchmark.backbones.registry.build_model("lstm")` builds it like any config-only backbone. It has
no pretrained weights: `pretrained` and `random` inits are the same draw. The LSTM is unidirectional,
so right padding never reaches a real position and the attention mask is accepted and ignored.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput


class LSTMConfig(PretrainedConfig):
    """Width and depth of a stacked LSTM (the paper: 3 layers, hidden 768)."""

    model_type = "lstm"

    def __init__(self, hidden_size: int = 768, num_layers: int = 3, dropout: float = 0.0, **kwargs: Any) -> None:
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        super().__init__(**kwargs)


class LSTMModel(PreTrainedModel):
    """A stacked LSTM over `inputs_embeds`, returning every position's hidden state."""

    config_class = LSTMConfig
    base_model_prefix = "lstm_model"  # no such attribute: `base_model` is the model itself

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.lstm = nn.LSTM(config.hidden_size, config.hidden_size, config.num_layers, batch_first=True,
                            dropout=config.dropout)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Keep PyTorch's LSTM initialisation (uniform ±1/sqrt(hidden))."""

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **kwargs: Any) -> BaseModelOutput:
        hidden, _ = self.lstm(inputs_embeds)
        return BaseModelOutput(last_hidden_state=hidden)


AutoConfig.register("lstm", LSTMConfig, exist_ok=True)
AutoModel.register(LSTMConfig, LSTMModel, exist_ok=True)
