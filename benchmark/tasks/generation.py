"""Training-time machinery of the generation tasks: token-count batches, decoder inputs, beam search.

Kept apart from `seq2seq.py` so that listing tasks and planning a grid never imports transformers;
tasks name `GenerationTrainer` and `TokenBatchArguments` by "module:Class".
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

from benchmark.errors import ConfigError


@dataclass
class TokenBatchArguments(Seq2SeqTrainingArguments):
    """Seq2seq arguments plus `max_tokens`: when set, training batches hold at most this many (padded)
    tokens — fairseq's batching, which the paper's en-ro recipe (16,384 tokens per update) uses."""

    max_tokens: int | None = field(default=None, metadata={"help": "token budget of one training batch"})


class TokenBatchSampler(Sampler[list[int]]):
    """Batches of similar length whose size × longest sequence ≤ `max_tokens` (fairseq's rule).

    Indices are sorted by length (ties broken by a per-epoch shuffle) and cut greedily, then the
    batches are shuffled; the batch count depends only on the lengths, so it is the same every epoch.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int) -> None:
        if max(lengths, default=0) > max_tokens:
            raise ConfigError(f"max_tokens={max_tokens} is smaller than the longest example ({max(lengths)} tokens)")
        self.lengths, self.max_tokens, self.seed, self.epoch = list(lengths), max_tokens, seed, 0
        self._count = len(self._batches(random.Random(seed)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self, rng: random.Random) -> list[list[int]]:
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], rng.random()))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:  # lengths ascend, so the newest index is the longest of its batch
            if current and (len(current) + 1) * self.lengths[i] > self.max_tokens:
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        batches = self._batches(rng)
        rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return self._count


class GenerationTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer whose training batches follow `args.max_tokens` when it is set."""

    def get_train_dataloader(self) -> DataLoader:
        max_tokens = getattr(self.args, "max_tokens", None)
        if not max_tokens:
            return super().get_train_dataloader()
        lengths = [max(len(s), len(t)) for s, t in zip(self.train_dataset["input_ids"], self.train_dataset["labels"])]
        sampler = TokenBatchSampler(lengths, max_tokens, self.args.seed)
        loader = DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers)
        return self.accelerator.prepare(loader)


class Seq2SeqCollator:
    """Pads sources and labels and builds the decoder inputs from the labels.

    The decoder inputs must be in the batch: with label smoothing the Trainer removes `labels` before
    the forward pass, so the model could not derive them itself. `shift` is the backbone's own rule
    (BART: prepend the decoder start token; mBART: rotate the target language code to the front).
    """

    def __init__(self, pad_token_id: int, shift: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.pad, self.shift = pad_token_id, shift

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {"input_ids": _pad([f["input_ids"] for f in features], self.pad),
                 "labels": _pad([f["labels"] for f in features], -100)}
        batch["attention_mask"] = (batch["input_ids"] != self.pad).long()
        for i, f in enumerate(features):  # a pad id inside a source (rare) still counts as a real token
            batch["attention_mask"][i, :len(f["input_ids"])] = 1
        batch["decoder_input_ids"] = self.shift(batch["labels"])
        return batch


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


def shift_for(family: str, pad_token_id: int, decoder_start_token_id: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The backbone family's label → decoder-input rule (the one its model applies when given labels)."""
    if family == "mbart":
        from transformers.models.mbart.modeling_mbart import shift_tokens_right as mbart_shift

        return lambda labels: mbart_shift(labels, pad_token_id)
    from transformers.models.bart.modeling_bart import shift_tokens_right as bart_shift

    return lambda labels: bart_shift(labels, pad_token_id, decoder_start_token_id)


@contextlib.contextmanager
def generating(trainer: Seq2SeqTrainer) -> Iterator[None]:
    """Temporarily make the trainer's predictions beam-searched sequences instead of losses; the caller scores
    them (against the raw references), so the trainer's own metric hook is off meanwhile."""
    saved = trainer.args.predict_with_generate, trainer.args.prediction_loss_only, trainer.compute_metrics
    trainer.args.predict_with_generate, trainer.args.prediction_loss_only, trainer.compute_metrics = True, False, None
    try:
        yield
    finally:
        trainer.args.predict_with_generate, trainer.args.prediction_loss_only, trainer.compute_metrics = saved


def decode(tok: Any, ids: np.ndarray) -> list[str]:
    """Token ids (−100 where padded by the Trainer) → stripped strings without special tokens."""
    ids = np.where(np.asarray(ids) < 0, tok.pad_token_id, ids)
    return [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)]
