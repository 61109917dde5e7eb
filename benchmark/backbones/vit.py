"""ViT's transformer layers as a sequence model over `inputs_embeds` (Lu et al.'s ViT-initialised baseline).

`ViTModel` only reads pixels. FPT replaces the patch projection and the CLS token with its own input
layer, so this adapter keeps the layers, the final layer norm and the patch position table — as an
`nn.Embedding`, so that FPT's `positions` site unfreezes exactly that table. Sequences longer than the
table (CIFAR-10 LRA: 1024 tokens vs 196 patches) read a linearly interpolated table.

Backbone option `positions`: `interpolate` (the default, above: the pretrained table, the paper's "ViT
initialisation") or `fresh`, the reference code's (kzl/universal-computation `fpt.py`): a new zero-initialised
1,024-row table in place of the pretrained one, read from its first row.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput


class ViTSequence(nn.Module):
    """positions → ViT layers (bidirectional, with the padding mask) → final layer norm."""

    FRESH_ROWS = 1024  # the reference code's table

    def __init__(self, vit: nn.Module, positions: str = "interpolate") -> None:
        super().__init__()
        self.config = vit.config
        table = vit.embeddings.position_embeddings.detach()[0, 1:]  # patch rows; the CLS row is unused
        if positions == "fresh":
            table = torch.zeros(self.FRESH_ROWS, table.shape[1], dtype=table.dtype, device=table.device)
        elif positions != "interpolate":
            raise ValueError(f"positions={positions!r}: expected 'interpolate' or 'fresh'")
        self.position_embeddings = nn.Embedding.from_pretrained(table.clone(), freeze=False)
        self.dropout = vit.embeddings.dropout
        self.layers = vit.layers
        self.layernorm = vit.layernorm

    def positions(self, n: int) -> torch.Tensor:
        table = self.position_embeddings.weight
        if n <= table.shape[0]:
            return table[:n]
        return nn.functional.interpolate(table.T[None], size=n, mode="linear", align_corners=True)[0].T

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **kwargs: Any) -> BaseModelOutput:
        h = self.dropout(inputs_embeds + self.positions(inputs_embeds.shape[1]))
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=h, attention_mask=attention_mask)
        for layer in self.layers:
            h = layer(h, mask)
        return BaseModelOutput(last_hidden_state=self.layernorm(h))
