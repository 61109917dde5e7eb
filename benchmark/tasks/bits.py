"""Synthetic bit tasks of Lu et al. (2021): data generated from the seed, nothing to download.

Training batches are drawn fresh from a seeded stream (as in the paper); evaluation uses
a fixed held-out set drawn from a separate stream of the same seed, so every method on
a seed is scored on identical examples.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import Dataset, IterableDataset

from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.tasks.base import TaskData
from benchmark.tasks.fpt import COMMON, FPTTask, Layout

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
    """`n` samples drawn once from a seeded stream (by default the held-out one)."""

    def __init__(self, draw: Callable[[torch.Generator], Sample], seed: int, n: int, offset: int = EVAL_STREAM) -> None:
        g = torch.Generator().manual_seed(seed + offset)
        self.items = [draw(g) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        return self.items[i]


class BitTask(FPTTask):
    """Shared plumbing: fixed-length float tokens, 2-way outputs, per-bit accuracy, fresh training batches."""

    def draw(self, opts: dict[str, Any]) -> Callable[[torch.Generator], Sample]:
        raise NotImplementedError

    def data(self, settings: TaskSettings, seed: int, data_path: Path | None) -> TaskData:
        opts = settings.options
        draw = self.draw(opts)
        return TaskData(SampleStream(draw, seed), FixedSet(draw, seed, opts["eval_size"]), eval_name="held-out")


class BitXor(BitTask):
    """Two random n-bit strings as 2n tokens of dimension 1; predict their elementwise XOR (n bits).

    Sample: inputs (2n, 1) float in {0, 1}, labels (n,) long in {0, 1}.
    """

    name = "bit-xor"
    options = {**COMMON, "n_bits": 5, "converge_at": [99.0]}

    def layout(self, opts: dict[str, Any]) -> Layout:
        return Layout(1, opts["n_bits"], 1, 2)

    def positions_used(self, opts: dict[str, Any]) -> int:
        return 2 * opts["n_bits"]

    def draw(self, opts: dict[str, Any]) -> Callable[[torch.Generator], Sample]:
        n = opts["n_bits"]

        def sample(g: torch.Generator) -> Sample:
            a, b = torch.randint(0, 2, (2, n), generator=g)
            return {"inputs": torch.cat([a, b]).float().unsqueeze(-1), "labels": a ^ b}
        return sample


class BitMemory(BitTask):
    """`n_strings` random ±1 strings of `n_bits`, then one of them again with each bit zeroed w.p. `mask_p`;
    predict the original query string. Every string is cut into tokens of `token_dim` bits.

    Sample: inputs ((n_strings + 1) · n_bits / token_dim, token_dim) float in {-1, 0, 1}; labels (n_bits,)
    long in {0, 1}. The model reads the query's n_bits / token_dim tokens, token_dim bits each. Paper
    sizes (defaults): 6 × 20 = 120 tokens of 50; copying the visible bits alone scores about 75%.
    """

    name = "bit-memory"
    options = {**COMMON, "n_strings": 5, "n_bits": 1000, "token_dim": 50, "mask_p": 0.5, "converge_at": [99.0]}
    smoke = {**FPTTask.smoke, "options": {"eval_size": 8, "n_bits": 20, "token_dim": 10}}

    def check(self, settings: TaskSettings, where: str) -> None:
        super().check(settings, where)
        opts = {**self.options, **settings.options}
        if opts["n_bits"] % opts["token_dim"]:
            raise ConfigError(f"{where}.options: n_bits={opts['n_bits']} is not a multiple of "
                              f"token_dim={opts['token_dim']}")

    def layout(self, opts: dict[str, Any]) -> Layout:
        return Layout(opts["token_dim"], opts["n_bits"] // opts["token_dim"], opts["token_dim"], 2)

    def positions_used(self, opts: dict[str, Any]) -> int:
        return (opts["n_strings"] + 1) * opts["n_bits"] // opts["token_dim"]

    def draw(self, opts: dict[str, Any]) -> Callable[[torch.Generator], Sample]:
        k, n, dim, p = opts["n_strings"], opts["n_bits"], opts["token_dim"], opts["mask_p"]

        def sample(g: torch.Generator) -> Sample:
            bits = torch.randint(0, 2, (k, n), generator=g)
            query = bits[torch.randint(0, k, (), generator=g)]
            keep = torch.rand(n, generator=g) >= p
            strings = torch.cat([2 * bits - 1, ((2 * query - 1) * keep).unsqueeze(0)]).float()
            return {"inputs": strings.reshape(-1, dim), "labels": query}
        return sample
