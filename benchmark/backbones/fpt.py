"""The frozen-pretrained-transformer wrapper of Lu et al. (2021).

A new input layer maps each token's raw features (bits, pixels, or token ids through
an embedding) into the backbone's width; the backbone runs on `inputs_embeds`; a new
output layer reads the last `out_tokens` positions. Which of these train is the
method's business (FPT, its ablations, full fine-tuning), not the wrapper's.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput


class FPTModel(nn.Module):
    """input layer → transformer (inputs_embeds, attention mask) → output layer on the last tokens."""

    def __init__(self, backbone: nn.Module, d_in: int, out_tokens: int, outputs_per_token: int, classes: int,
                 vocab_size: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        d = backbone.config.hidden_size
        if vocab_size is not None:
            self.input_layer: nn.Module = nn.Embedding(vocab_size, d)
        else:
            self.input_layer = nn.Linear(d_in, d)
            nn.init.orthogonal_(self.input_layer.weight, gain=1.41)
            nn.init.zeros_(self.input_layer.bias)
        self.dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(d, outputs_per_token * classes)
        self.out_tokens, self.outputs_per_token, self.classes = out_tokens, outputs_per_token, classes

    @property
    def base_model(self) -> nn.Module:
        return self.backbone

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> SequenceClassifierOutput:
        x = self.dropout(self.input_layer(inputs))
        hidden = self.backbone(inputs_embeds=x, attention_mask=attention_mask).last_hidden_state
        logits = self.output_layer(hidden[:, -self.out_tokens:])
        logits = logits.reshape(logits.shape[0], self.out_tokens * self.outputs_per_token, self.classes)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.classes), labels.reshape(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)
