"""What a task is: its data, its model head, its metric and its paper recipe.

A task module owns everything task-specific; `benchmark.train` only wires a task, a
method and the Trainer together. `settings` is the instance's resolved, typed configuration
(`benchmark.spec.TaskSettings`: the family's `options` overlaid with the config file's, the backbone, the data
folder), `recipe` its training hyper-parameters.
"""
from __future__ import annotations

import json

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
from torch import nn
from torch.utils.data import Dataset, IterableDataset

from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings


@dataclass
class TaskData:
    """Training and evaluation data plus the collator that batches them."""

    train: Dataset | IterableDataset
    eval: Dataset
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    eval_name: str = "validation"
    extras: dict[str, Any] = field(default_factory=dict)  # further eval sets, references … for `Task.evaluate`
    metrics: Callable[[Any, Any], dict[str, float]] | None = None  # replaces `Task.compute_metrics` (decoding)


WORDS = "the minister said police found new report city people year world government state court".split()


def sentence(rng: Any, n: int) -> str:
    """n random words (fixtures)."""
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


class Task:
    """Base class: subclasses set the class attributes and implement `build_model` and `data`."""

    name: ClassVar[str]
    paper: ClassVar[str]  # "he2022" or "lu2021"
    metric: ClassVar[str]  # the primary metric, higher is better
    paper_metric: ClassVar[str | None] = None  # the metric comparable with the paper's numbers (default: metric)
    default_backbone: ClassVar[str]
    needs_data: ClassVar[bool] = False  # True when a data rule must fetch files first
    options: ClassVar[dict[str, Any]] = {}  # task-specific settings and their defaults
    recipe: ClassVar[dict[str, Any]] = {}  # training hyper-parameters (paper recipe)
    version: ClassVar[str] = "1"
    # transformers classes by name, so that planning a grid never imports the training stack
    trainer: ClassVar[str] = "Trainer"  # "Seq2SeqTrainer" for generation tasks
    training_args_class: ClassVar[str] = "TrainingArguments"
    extra_metrics: ClassVar[tuple[str, ...]] = ()  # metrics reported beside the primary one
    # the smallest settings (backbone, options, train) that exercise every code path of the task in seconds on a
    # tiny random backbone: the task contract (benchmark/tasks/contract.py) trains with them
    smoke: ClassVar[dict[str, Any]] = {}

    def fixture(self, folder: Path) -> Path | None:
        """Write a tiny local copy of the task's data into `folder`, in the schema `prepare` copies from a
        `data_dir` (nothing is downloaded), and return it; None when the task generates its own data."""
        if self.needs_data:
            raise NotImplementedError(f"task {self.name!r} reads prepared data but writes no fixture")
        return None

    def check(self, settings: TaskSettings, where: str) -> None:
        """Reject unknown task options before any training; subclasses add data checks."""
        bad = sorted(set(settings.options) - set(self.options))
        if bad:
            raise ConfigError(f"{where}.options: unknown key(s) {bad}; valid: {', '.join(sorted(self.options))}")

    def build_model(self, settings: TaskSettings, init: str, seed: int) -> nn.Module:
        raise NotImplementedError

    def data(self, settings: TaskSettings, seed: int, data_path: Path | None) -> TaskData:
        raise NotImplementedError

    def prepare(self, settings: TaskSettings, out_dir: Path) -> None:
        """Write the task's files into `out_dir` (Hub download or local copy). Only for `needs_data` tasks."""
        raise NotImplementedError(f"task {self.name!r} generates its data; it needs no data rule")

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Accuracy over every prediction (per-bit accuracy for bit tasks)."""
        return {self.metric: float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean() * 100)}

    def training_kwargs(self, train: dict[str, Any]) -> dict[str, Any]:
        """Extra `training_args_class` arguments this task needs (generation, token batching …)."""
        return {}

    def after_apply(self, model: nn.Module, settings: TaskSettings, method: Any) -> None:
        """Adjust what trains after the method is applied (e.g. reproduce a reference-code freezing bug)."""

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        """How this run was evaluated, for the record: selection, splits, deviations from the paper."""
        return {}

    def count_conventions(self, model: nn.Module, settings: TaskSettings) -> dict[str, Any]:
        """Trainable counts by the task's paper's own convention, for the record's `params` beside ours."""
        return {}

    def evaluate(self, trainer: Any, data: TaskData, settings: TaskSettings) -> dict[str, float]:
        """Final metrics of the trained model on `data.eval` (generation tasks override: beam search etc.)."""
        out = trainer.evaluate()
        return {k.removeprefix("eval_"): float(v) for k, v in out.items()
                if k.removeprefix("eval_") in (self.metric, "loss") or k.removeprefix("eval_") in self.extra_metrics}


MAX_LINE = 1 << 20  # bytes: no dataset row is this long; a file of garbage without newlines stops here


def check_jsonl(path: Path, columns: tuple[str, ...], max_lines: int | None = None) -> None:
    """Fail fast on a data file that is not what it claims: each line one JSON object holding `columns`. The
    error names the file, the line and the expected columns; a huge file of garbage stops at its first line."""
    expected = f"expected one JSON object per line with columns {', '.join(columns)}"
    with open(path, "rb") as f:
        for n, raw in enumerate(iter(lambda: f.readline(MAX_LINE + 1), b""), 1):
            if max_lines is not None and n > max_lines:
                return
            if len(raw) > MAX_LINE:
                raise ConfigError(f"{path}, line {n}: longer than {MAX_LINE} bytes (not jsonl?); {expected}")
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                cut = "" if raw.endswith(b"\n") else " (the last line is cut short: a truncated file?)"
                raise ConfigError(f"{path}, line {n}: not valid JSON{cut}: {e}; {expected}") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}, line {n}: a JSON {type(row).__name__}, not an object; {expected}")
            missing = [c for c in columns if c not in row]
            if missing:
                raise ConfigError(f"{path}, line {n}: lacks column(s) {', '.join(missing)} (has "
                                  f"{', '.join(sorted(row)) or 'none'}); {expected}")


class JsonlTask(Task):
    """A task whose data is the Hub dataset `hub_id`/`hub_config`, kept locally as `<split>.jsonl` files in the
    Hub's columns. The data rule writes that folder from the Hub or copies a local `data_dir` in the same
    schema, so training reads one format whichever the source."""

    needs_data = True
    hub_id: ClassVar[str]
    hub_config: ClassVar[str | None] = None
    splits: ClassVar[tuple[str, ...]]
    columns: ClassVar[tuple[str, ...]]  # what a local jsonl row must hold

    def check(self, settings: TaskSettings, where: str) -> None:
        super().check(settings, where)
        source = settings.data_dir
        if source is None:
            return
        missing = [s for s in self.splits if not (Path(source) / f"{s}.jsonl").is_file()]
        if missing:
            hub = self.hub_id + (f"/{self.hub_config}" if self.hub_config else "")
            raise ConfigError(f"{where}.data_dir: {source} lacks {', '.join(f'{s}.jsonl' for s in missing)} "
                              f"(a local copy of the Hub's {hub} in jsonl, columns {', '.join(self.columns)})")
        for split in self.splits:  # the first lines at planning; every line when the data rule copies them
            check_jsonl(Path(source) / f"{split}.jsonl", self.columns, max_lines=5)

    def fixture_row(self, split: str, i: int, rng: Any) -> dict[str, Any]:
        """Row `i` of a fixture split, in the Hub's columns."""
        raise NotImplementedError(f"task {self.name!r} writes no fixture rows")

    def fixture(self, folder: Path, n: int = 12) -> Path:
        import json
        import random

        rng = random.Random(0)
        folder.mkdir(parents=True, exist_ok=True)
        for split in self.splits:
            rows = [json.dumps(self.fixture_row(split, i, rng), ensure_ascii=False) for i in range(n)]
            (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
        return folder

    def prepare(self, settings: TaskSettings, out_dir: Path) -> None:
        import shutil

        out_dir.mkdir(parents=True, exist_ok=True)
        source = settings.data_dir
        if source is not None:
            for split in self.splits:
                check_jsonl(Path(source) / f"{split}.jsonl", self.columns)
                shutil.copyfile(Path(source) / f"{split}.jsonl", out_dir / f"{split}.jsonl")
            return
        import datasets

        ds = datasets.load_dataset(self.hub_id, self.hub_config)
        for split in self.splits:
            ds[split].to_json(str(out_dir / f"{split}.jsonl"), lines=True, force_ascii=False)
