"""What every task of Lu et al. (2021) shares: the FPT wrapper, the paper recipe, the record's protocol.

A task says how its inputs look (`Layout`); the model is always the FPT wrapper around the
task's backbone, with the method's init deciding the weights (pretrained, random, statistics-only,
Bit-Memory-pretrained, or another architecture). Also the sequence plumbing shared by the
token tasks (ListOps, Remote Homology): right padding with an attention mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from benchmark.spec import TaskSettings
from benchmark.tasks.base import Task, TaskData

# Adam, constant lr 1e-3, no weight decay, grad-norm clip 1.0 (paper appendix); batch within the paper's 2–16
RECIPE = {"learning_rate": 1e-3, "batch_size": 16, "max_steps": 2000, "lr_scheduler": "constant",
          "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 1.0, "eval_steps": 250}
# kzl/universal-computation's default batch size (scripts/run.py). The paper gives 2–16 and the recipe takes 16 (steps to
# converge depend on it); `train: {batch_size: 4}` on an instance or a grid block is the reference's, and the record's
# protocol says which.
REFERENCE_BATCH = 4
# options every FPT task accepts: eval-set size and the accuracy levels whose first crossing the record keeps
COMMON = {"eval_size": 1000, "converge_at": []}


@dataclass(frozen=True)
class Layout:
    """Input features per token (or a vocabulary for token ids), positions read, outputs per position."""

    d_in: int
    out_tokens: int
    outputs_per_token: int
    classes: int
    vocab_size: int | None = None


class FPTTask(Task):
    """Base of the Lu et al. tasks: subclasses give `layout` and `data`."""

    paper = "lu2021"
    metric = "accuracy"
    default_backbone = "gpt2"
    recipe: ClassVar[dict[str, Any]] = RECIPE
    padded: ClassVar[bool] = False  # variable-length inputs, right-padded with an attention mask
    # 2: the backbone's token-embedding table, never read behind the input layer, stays frozen under every method
    # (full training used to count and save it), so records of version 1 are not reused
    version: ClassVar[str] = "2"
    smoke = {"backbone": "tiny-gpt2", "options": {"eval_size": 8},
             "train": {"max_steps": 2, "eval_steps": 2, "batch_size": 4}}

    def layout(self, opts: dict[str, Any]) -> Layout:
        raise NotImplementedError

    def positions_used(self, opts: dict[str, Any]) -> int | None:
        """How many positions an input reads at most (None: no bound)."""
        return None

    def count_conventions(self, model: nn.Module, settings: TaskSettings) -> dict[str, Any]:
        """Lu et al.'s count: a trained position table counts only the rows the task reads (64 for CIFAR-10's
        patches: their 106,752 for GPT-2), while every row trains, here as in the reference code (870,154)."""
        from benchmark.backbones.anatomy import anatomy

        used = self.positions_used(settings.options)
        tables = [p for m in anatomy(model).positions for p in m.parameters() if p.requires_grad and p.dim() == 2]
        unread = sum((p.shape[0] - used) * p.shape[1] for p in tables if used is not None and p.shape[0] > used)
        if not unread:
            return {}
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return {"positions_used": used, "trainable_positions_used": trainable - unread}

    def build_model(self, settings: TaskSettings, init: str, seed: int) -> nn.Module:
        from benchmark.backbones.fpt import FPTModel, build_backbone  # transformers: not at planning time
        backbone = build_backbone(settings, init, seed)
        shape = self.layout(settings.options)
        torch.manual_seed(seed)
        return FPTModel(backbone, shape.d_in, shape.out_tokens, shape.outputs_per_token, shape.classes,
                        vocab_size=shape.vocab_size)

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        """Choices that differ from the reference code, kept in the record."""
        size, batch = settings.options.get("eval_size"), settings.train.get("batch_size")
        return {"batch_size": f"{batch}" + (" (the reference code's default)" if batch == REFERENCE_BATCH else
                                            " (within the paper's 2–16)" if batch and 2 <= batch <= 16 else
                                            " (outside the paper's 2–16)"),
                "attention_mask": "on padded positions" if self.padded else "none needed (fixed length)",
                "readout": "last real token(s) of each sequence",
                "evaluation": f"a fixed evaluation set ({size or 'all'} examples, chosen by the seed), the same for "
                              f"every method on a seed; the reference code averaged 25 fresh batches",
                "steps_to_converge": f"the first evaluated step within 1% of the run's best {self.metric} (Lu et al. "
                                     f"do not define convergence; the record's `convergence` adds fixed thresholds)"}

    def evaluate(self, trainer: Any, data: TaskData, settings: TaskSettings) -> dict[str, float]:
        """The final metrics plus `steps_to_converge`, which Lu et al.'s convergence table reports."""
        from benchmark.train import convergence  # the training stack: not at planning time

        key = f"eval_{self.metric}"
        curve = [h for h in trainer.state.log_history if key in h]
        steps = convergence(curve, key, ())["steps_to_99pct_of_best"]
        out = super().evaluate(trainer, data, settings)
        if steps is not None:
            out["steps_to_converge"] = float(steps)
        return out


def pad_tokens(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Right-pad token ids with 0 and mark real positions in `attention_mask`."""
    lengths = [len(b["inputs"]) for b in batch]
    inputs = torch.zeros(len(batch), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(inputs)
    for i, (b, n) in enumerate(zip(batch, lengths)):
        inputs[i, :n], mask[i, :n] = b["inputs"], 1
    return {"inputs": inputs, "attention_mask": mask, "labels": torch.stack([b["labels"] for b in batch])}


class Listed(Dataset):
    """A list of prepared samples."""

    def __init__(self, items: list[dict[str, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def subset(n: int, size: int | None, seed: int) -> torch.Tensor:
    """Indices of a seeded random subset of `size` (all, in order, when size is None or too big)."""
    if not size or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values
