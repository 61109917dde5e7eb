"""The frozen-pretrained-transformer wrapper of Lu et al. (2021).

A new input layer maps each token's raw features (bits, pixels, or token ids through
an embedding) into the backbone's width; the backbone runs on `inputs_embeds`; a new
output layer reads the last `out_tokens` real positions. Which of these train is the
method's business (FPT, its ablations, full fine-tuning), not the wrapper's.

Padded batches carry an `attention_mask` (the reference code had none, so padding leaked
into attention and the output read pad positions); the readout gathers the last real
tokens of each sequence, so right padding never reaches the output layer.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from benchmark.backbones.registry import backbone_options, build_model, get_backbone
from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings


def resolve_backbone(settings: TaskSettings, init: str) -> tuple[str, str, str | None]:
    """(backbone name, registry init, local path) for the backbone's `init` (a baseline's; `pretrained` otherwise).

    `bit` reads the Bit-Memory-pretrained checkpoint that the workflow's pretrain rule writes into `backbone_path`.
    A baseline that swaps the backbone (LSTM, ViT-initialised) has already put its backbone in the settings."""
    name, path = settings.backbone, settings.backbone_path
    if init == "bit":
        if path is None:
            raise ConfigError(f"task {settings.name!r}: init 'bit' needs the Bit-Memory-pretrained backbone "
                              f"in backbone_path (the workflow's pretrain_bit rule provides it)")
        return name, "pretrained", path
    return name, init, path


def build_backbone(settings: TaskSettings, init: str, seed: int) -> nn.Module:
    """A sequence model that accepts `inputs_embeds` and `attention_mask`, for any registered family, built with
    the settings' backbone options (the LSTM's cell, ViT's position table)."""
    name, init, path = resolve_backbone(settings, init)
    family = get_backbone(name).family
    options = backbone_options(name, settings.backbone_options, f"task {settings.name!r} backbone")
    extra: dict[str, Any] = {}
    if family == "lstm":  # the reference code's cell: layer norms, and dropout 0.1 after every layer
        reference = options["cell"] == "layer-norm"
        extra = {"layer_norm": reference, "dropout": 0.1 if reference else 0.0}
    model = build_model(name, "encoder" if family == "t5" else "base", init=init, path=path, seed=seed, **extra)
    if family == "t5":
        # The wrapper feeds inputs_embeds, so the encoder's alias of T5's shared token table is never read; left in,
        # the two names of one tensor make the Trainer's safetensors checkpoint refuse to save.
        model.encoder.embed_tokens = None
    if family == "vit":
        from benchmark.backbones.vit import ViTSequence

        return ViTSequence(model, positions=options["positions"])
    return model


def last_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor | None, k: int) -> torch.Tensor:
    """The last `k` real positions of each sequence (right padding skipped): (batch, k, d)."""
    if attention_mask is None:
        return hidden[:, -k:]
    end = attention_mask.long().sum(1, keepdim=True)  # (batch, 1): one past the last real token
    index = (end - k + torch.arange(k, device=hidden.device)).clamp(min=0)
    return hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


class FPTModel(nn.Module):
    """input layer → transformer (inputs_embeds, attention mask) → output layer on the last real tokens."""

    def __init__(self, backbone: nn.Module, d_in: int, out_tokens: int, outputs_per_token: int, classes: int,
                 vocab_size: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        d = backbone.config.hidden_size
        if vocab_size is not None:
            self.input_layer: nn.Module = nn.Embedding(vocab_size, d, padding_idx=0)
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
        logits = self.output_layer(last_tokens(hidden, attention_mask, self.out_tokens))
        outputs = self.out_tokens * self.outputs_per_token
        # (batch, outputs, classes); one output per example (classification) drops the outputs axis
        logits = logits.reshape(logits.shape[0], *((outputs,) if outputs > 1 else ()), self.classes)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.classes), labels.reshape(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)
