"""Remote homology (TAPE): classify a protein's amino-acid sequence into one of 1,195 folds.

Data comes from the Hub (default `Hauser7733/TAPE_Remote_Homology`, TAPE's columns `primary`
and `fold_label`; splits train, validation, test_fold_holdout …) or from a local folder of
`<split>.jsonl` files with those columns (TAPE's own json export); either way the data rule writes
jsonl into `resources/data/<task>/`. The paper reports the fold-level test set, the default here.

The reference code's protocol is two options (config/config.yaml's `remote-homology-ref`): `eval_split:
validation` (TAPE's valid split, which kzl/universal-computation evaluates on) and `long_sequences: skip` (it drops
sequences longer than `max_tokens` = 1024 from training and evaluation, where the default cuts them to their first
1024 residues; its README scales the accuracies it reports by 0.9739, the share of sequences kept, which is not
done here). The record's `protocol` says which.

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
from benchmark.spec import TaskSettings
from benchmark.tasks.base import TaskData
from benchmark.tasks.fpt import COMMON, RECIPE, FPTTask, Layout, Listed, pad_tokens, subset

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWYXBZUO"  # 20 standard, unknown X, ambiguous B/Z, rare U/O
VOCAB = ["<pad>", *AMINO_ACIDS]
AA_ID = {a: i for i, a in enumerate(VOCAB)}
FOLDS = 1195
LONG = ("truncate", "skip")  # a sequence over max_tokens: cut to its first max_tokens residues, or left out


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
               "eval_split": "test_fold_holdout", "max_tokens": 1024, "long_sequences": "truncate",
               "train_size": None, "eval_size": None}
    smoke = {"backbone": "tiny-gpt2", "options": {"max_tokens": 16}, "train": {"max_steps": 2, "eval_steps": 2,
                                                                                 "batch_size": 4}}

    def splits(self, opts: dict[str, Any]) -> tuple[str, str]:
        return opts["train_split"], opts["eval_split"]

    def check(self, settings: TaskSettings, where: str) -> None:
        super().check(settings, where)
        source = settings.data_dir
        opts = {**self.options, **settings.options}
        if opts["long_sequences"] not in LONG:
            raise ConfigError(f"{where}.options.long_sequences: {opts['long_sequences']!r} is not one of {LONG} "
                              f"(truncate: the paper's ≤ 1024 tokens; skip: the reference code's)")
        if opts["long_sequences"] == "skip" and not opts["max_tokens"]:
            raise ConfigError(f"{where}.options.long_sequences: 'skip' needs max_tokens (the length to skip above)")
        if source is not None:
            missing = [f"{s}.jsonl" for s in self.splits(opts) if not (Path(source) / f"{s}.jsonl").is_file()]
            if missing:
                raise ConfigError(f"{where}.data_dir: {source} lacks {', '.join(missing)} (TAPE remote homology "
                                  f"in jsonl, columns primary, fold_label)")

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        opts = settings.options
        cut, split = opts["max_tokens"], opts["eval_split"]
        long = ("none (max_tokens null)" if not cut else
                f"sequences over {cut} residues left out of training and evaluation (reference code; it scaled its "
                f"reported accuracies by 0.9739, not done here)" if opts["long_sequences"] == "skip" else
                f"sequences cut to their first {cut} residues (paper: ≤ 1024 tokens)")
        return {**super().protocol(settings), "long_sequences": long,
                "eval_split": split + (" (the paper's fold-level test set)" if split == "test_fold_holdout" else
                                       " (TAPE's valid split: the reference code's)" if split == "validation" else "")}

    def layout(self, opts: dict[str, Any]) -> Layout:
        return Layout(0, 1, 1, FOLDS, vocab_size=len(VOCAB))

    def positions_used(self, opts: dict[str, Any]) -> int | None:
        return opts["max_tokens"]

    def fixture(self, folder: Path, n: int = 12) -> Path:
        """Random sequences in TAPE's columns (primary, fold_label) for the default splits."""
        rng = random.Random(0)
        folder.mkdir(parents=True, exist_ok=True)
        for s in self.splits(self.options):
            rows = [{"primary": "".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=rng.randint(30, 1200))),  # TAPE-like
                     "fold_label": i % 7}
                    for i in range(n)]
            (folder / f"{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return folder

    def prepare(self, settings: TaskSettings, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        opts, source = settings.options, settings.data_dir
        if source is not None:
            for s in self.splits(opts):
                shutil.copyfile(Path(source) / f"{s}.jsonl", out_dir / f"{s}.jsonl")
            return
        import datasets

        ds = datasets.load_dataset(opts["hub_id"])
        for s in self.splits(opts):
            ds[s].select_columns(["primary", "fold_label"]).to_json(str(out_dir / f"{s}.jsonl"), lines=True)

    def data(self, settings: TaskSettings, seed: int, data_path: Path | None) -> TaskData:
        assert data_path is not None, f"task {self.name} reads its prepared data folder"
        opts = settings.options

        def read(split: str, size: int | None) -> Listed:
            rows = [json.loads(line) for line in (data_path / f"{split}.jsonl").read_text().splitlines() if line]
            if opts["long_sequences"] == "skip":  # before the subset, so eval_size counts kept sequences
                rows = [r for r in rows if len(r["primary"]) <= opts["max_tokens"]]
            rows = [rows[i] for i in subset(len(rows), size, seed).tolist()]
            return Listed([{"inputs": encode(r["primary"], opts["max_tokens"]),
                            "labels": torch.tensor(int(r["fold_label"]))} for r in rows])

        train_split, eval_split = self.splits(opts)
        return TaskData(read(train_split, opts["train_size"]), read(eval_split, opts["eval_size"]), pad_tokens,
                        eval_name=eval_split)
