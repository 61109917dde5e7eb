"""Synthetic bit tasks of Lu et al. (2021): data generated from the seed, nothing to download.

Training batches are drawn fresh from a seeded stream (as in the paper); evaluation uses
a fixed held-out set drawn from a separate stream of the same seed, so every method on
a seed is scored on identical examples.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset

from benchmark.backbones.fpt import FPTModel
from benchmark.backbones.registry import build_model
from benchmark.tasks.base import Task, TaskData

Sample = dict[str, torch.Tensor]
EVAL_STREAM = 1_000_003  # offset that separates the held-out stream from the training stream


class SampleStream(IterableDataset):
    """An endless, seeded stream of samples (each worker-free iteration restarts the same stream)."""

    def __init__(self, draw: Callable[[torch.Generator], Sample], seed: int) -> None:
        self.draw, self.seed = draw, seed

    def __iter__(self) -> Iterator[Sample]:
        g = torch.Generator().manual_seed(self.seed)
        while True:
            yield self.draw(g)


class FixedSet(Dataset):
    """`n` samples drawn once from a seeded stream."""

    def __init__(self, draw: Callable[[torch.Generator], Sample], seed: int, n: int) -> None:
        g = torch.Generator().manual_seed(seed + EVAL_STREAM)
        self.items = [draw(g) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        return self.items[i]


class BitTask(Task):
    """Shared plumbing: an FPT model over float tokens and a per-bit accuracy metric."""

    paper = "lu2021"
    metric = "accuracy"
    default_backbone = "gpt2"
    recipe = {"learning_rate": 1e-3, "batch_size": 16, "max_steps": 2000, "lr_scheduler": "constant",
              "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 1.0, "eval_steps": 250}

    def shape(self, opts: dict[str, Any]) -> tuple[int, int, int]:
        """(input dim per token, output tokens read, bits predicted per output token)."""
        raise NotImplementedError

    def draw(self, opts: dict[str, Any]) -> Callable[[torch.Generator], Sample]:
        raise NotImplementedError

    def build_model(self, settings: dict[str, Any], init: str, seed: int) -> nn.Module:
        backbone = build_model(settings["backbone"], "base", init=init, path=settings.get("backbone_path"), seed=seed)
        d_in, out_tokens, per_token = self.shape(settings["options"])
        torch.manual_seed(seed)
        return FPTModel(backbone, d_in, out_tokens, per_token, classes=2)

    def data(self, settings: dict[str, Any], seed: int, data_path: Path | None) -> TaskData:
        opts = settings["options"]
        draw = self.draw(opts)
        return TaskData(SampleStream(draw, seed), FixedSet(draw, seed, opts["eval_size"]), eval_name="held-out")


class BitXor(BitTask):
    """Two random n-bit strings as 2n tokens of dimension 1; predict their elementwise XOR (n bits)."""

    name = "bit-xor"
    options = {"n_bits": 5, "eval_size": 1000}

    def shape(self, opts: dict[str, Any]) -> tuple[int, int, int]:
        return 1, opts["n_bits"], 1

    def draw(self, opts: dict[str, Any]) -> Callable[[torch.Generator], Sample]:
        n = opts["n_bits"]

        def sample(g: torch.Generator) -> Sample:
            a, b = torch.randint(0, 2, (2, n), generator=g)
            return {"inputs": torch.cat([a, b]).float().unsqueeze(-1), "labels": a ^ b}
        return sample
