"""GLUE sentence classification (He et al. 2022 report SST-2 and MNLI dev accuracy).

Data comes from the Hub (`nyu-mll/glue`) or from a local folder of `<split>.jsonl` files
in the Hub's columns; either way the data rule writes jsonl into `resources/data/<task>/`
and training reads only that folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from torch import nn
from transformers import DataCollatorWithPadding

from benchmark.backbones.registry import build_model, load_tokenizer
from benchmark.errors import ConfigError
from benchmark.tasks.base import Task, TaskData


class GlueTask(Task):
    paper = "he2022"
    metric = "accuracy"
    default_backbone = "roberta-base"
    needs_data = True
    hub_config: str
    text_fields: tuple[str, ...]
    num_labels: int
    splits: tuple[str, ...]
    eval_split: str
    options = {"max_length": 512, "train_size": None, "eval_size": None}
    # paper recipe for RoBERTa-base on GLUE (He et al. appendix)
    recipe = {"learning_rate": 1e-4, "batch_size": 32, "num_epochs": 10, "lr_scheduler": "linear",
              "warmup_ratio": 0.06, "weight_decay": 0.1, "max_grad_norm": 1.0, "adam_beta2": 0.98,
              "adam_epsilon": 1e-6}

    def check(self, settings: dict[str, Any], where: str) -> None:
        super().check(settings, where)
        source = settings.get("data_dir")
        if source is not None:
            missing = [s for s in self.splits if not (Path(source) / f"{s}.jsonl").is_file()]
            if missing:
                raise ConfigError(f"{where}.data_dir: {source} lacks {', '.join(f'{s}.jsonl' for s in missing)} "
                                  f"(a local copy of the Hub's nyu-mll/glue/{self.hub_config} in jsonl, "
                                  f"columns {', '.join(self.text_fields)}, label)")

    def prepare(self, settings: dict[str, Any], out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        source = settings.get("data_dir")
        if source is not None:
            for split in self.splits:
                shutil.copyfile(Path(source) / f"{split}.jsonl", out_dir / f"{split}.jsonl")
            return
        import datasets

        ds = datasets.load_dataset("nyu-mll/glue", self.hub_config)
        for split in self.splits:
            ds[split].to_json(str(out_dir / f"{split}.jsonl"), lines=True)

    def build_model(self, settings: dict[str, Any], init: str, seed: int) -> nn.Module:
        tok = load_tokenizer(settings["backbone"], settings.get("backbone_path"))
        return build_model(settings["backbone"], "seq-cls", init=init, path=settings.get("backbone_path"), seed=seed,
                           num_labels=self.num_labels, pad_token_id=tok.pad_token_id)

    def data(self, settings: dict[str, Any], seed: int, data_path: Path | None) -> TaskData:
        import datasets

        assert data_path is not None, f"task {self.name} reads its prepared data folder"
        opts = settings["options"]
        tok = load_tokenizer(settings["backbone"], settings.get("backbone_path"))
        files = {s: str(data_path / f"{s}.jsonl") for s in ("train", self.eval_split)}
        ds = datasets.load_dataset("json", data_files=files)
        train, evaluation = ds["train"], ds[self.eval_split]
        if opts.get("train_size"):
            train = train.shuffle(seed=seed).select(range(min(opts["train_size"], len(train))))
        if opts.get("eval_size"):
            evaluation = evaluation.select(range(min(opts["eval_size"], len(evaluation))))

        def encode(batch: dict[str, list]) -> dict[str, Any]:
            enc = tok(*(batch[f] for f in self.text_fields), truncation=True, max_length=opts["max_length"])
            enc["labels"] = batch["label"]
            return enc

        cols = train.column_names
        train = train.map(encode, batched=True, remove_columns=cols)
        evaluation = evaluation.map(encode, batched=True, remove_columns=evaluation.column_names)
        return TaskData(train, evaluation, DataCollatorWithPadding(tok), eval_name=self.eval_split)


class SST2(GlueTask):
    """Binary sentiment (67,349 / 872 / 1,821)."""

    name = "sst2"
    hub_config = "sst2"
    text_fields = ("sentence",)
    num_labels = 2
    splits = ("train", "validation")
    eval_split = "validation"
