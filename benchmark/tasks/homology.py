"""Remote homology (TAPE): classify a protein's amino-acid sequence into one of 1,195 folds.

Data comes from the Hub (default `Hauser7733/TAPE_Remote_Homology`, TAPE's columns `primary`
and `fold_label`; splits train, validation, test_fold_holdout …) or from a local folder of
`<split>.jsonl` files with those columns (TAPE's own json export); either way the data rule writes
jsonl into `resources/data/<task>/`. The paper reports the fold-level test set, the default here.

Sample: inputs (length ≤ max_tokens,) long amino-acid ids (0 = padding), labels () long in 0–1194.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import ConfigError
from benchmark.tasks.base import TaskData
from benchmark.tasks.fpt import COMMON, RECIPE, FPTTask, Layout, Listed, pad_tokens, subset

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWYXBZUO"  # 20 standard, unknown X, ambiguous B/Z, rare U/O
VOCAB = ["<pad>", *AMINO_ACIDS]
AA_ID = {a: i for i, a in enumerate(VOCAB)}
FOLDS = 1195


def encode(sequence: str, max_tokens: int | None) -> torch.Tensor:
    """Amino-acid ids; letters outside the alphabet read as X."""
    ids = [AA_ID.get(a, AA_ID["X"]) for a in sequence.upper()]
    return torch.tensor(ids[:max_tokens] if max_tokens else ids, dtype=torch.long)


class RemoteHomology(FPTTask):
    """Fold classification; lr 1e-4 (the paper's Homology recipe)."""

    name = "remote-homology"
    needs_data = True
    padded = True
    recipe = {**RECIPE, "learning_rate": 1e-4}
    options = {**COMMON, "hub_id": "Hauser7733/TAPE_Remote_Homology", "train_split": "train",
               "eval_split": "test_fold_holdout", "max_tokens": 1024, "train_size": None, "eval_size": None}
    smoke = {"backbone": "tiny-gpt2", "options": {"max_tokens": 16}, "train": {"max_steps": 2, "eval_steps": 2,
                                                                                 "batch_size": 4}}

    def splits(self, opts: dict[str, Any]) -> tuple[str, str]:
        return opts["train_split"], opts["eval_split"]

    def check(self, settings: dict[str, Any], where: str) -> None:
        super().check(settings, where)
        source = settings.get("data_dir")
        opts = {**self.options, **settings.get("options", {})}
        if source is not None:
            missing = [f"{s}.jsonl" for s in self.splits(opts) if not (Path(source) / f"{s}.jsonl").is_file()]
            if missing:
                raise ConfigError(f"{where}.data_dir: {source} lacks {', '.join(missing)} (TAPE remote homology "
                                  f"in jsonl, columns primary, fold_label)")

    def layout(self, opts: dict[str, Any]) -> Layout:
        return Layout(0, 1, 1, FOLDS, vocab_size=len(VOCAB))

    def fixture(self, folder: Path, n: int = 12) -> Path:
        """Random sequences in TAPE's columns (primary, fold_label) for the default splits."""
        rng = random.Random(0)
        folder.mkdir(parents=True, exist_ok=True)
        for s in self.splits(self.options):
            rows = [{"primary": "".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=12)), "fold_label": i % 7}
                    for i in range(n)]
            (folder / f"{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return folder

    def prepare(self, settings: dict[str, Any], out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        opts, source = settings["options"], settings.get("data_dir")
        if source is not None:
            for s in self.splits(opts):
                shutil.copyfile(Path(source) / f"{s}.jsonl", out_dir / f"{s}.jsonl")
            return
        import datasets

        ds = datasets.load_dataset(opts["hub_id"])
        for s in self.splits(opts):
            ds[s].select_columns(["primary", "fold_label"]).to_json(str(out_dir / f"{s}.jsonl"), lines=True)

    def data(self, settings: dict[str, Any], seed: int, data_path: Path | None) -> TaskData:
        assert data_path is not None, f"task {self.name} reads its prepared data folder"
        opts = settings["options"]

        def read(split: str, size: int | None) -> Listed:
            rows = [json.loads(line) for line in (data_path / f"{split}.jsonl").read_text().splitlines() if line]
            rows = [rows[i] for i in subset(len(rows), size, seed).tolist()]
            return Listed([{"inputs": encode(r["primary"], opts["max_tokens"]),
                            "labels": torch.tensor(int(r["fold_label"]))} for r in rows])

        train_split, eval_split = self.splits(opts)
        return TaskData(read(train_split, opts["train_size"]), read(eval_split, opts["eval_size"]), pad_tokens,
                        eval_name=eval_split)
