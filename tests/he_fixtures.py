"""Small fixtures in the Hub schemas of He et al.'s datasets, written by the tests (nothing is downloaded)."""
from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = "the minister said police found new report city people year world government state court".split()
RO = "Această casă este frumoasă şi mare Ţara noastră are păduri și râuri în România".split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _write(folder: Path, split: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{split}.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def xsum(folder: Path, sizes: tuple[int, int, int] = (16, 6, 5)) -> Path:
    """EdinburghNLP/xsum columns: document, summary, id."""
    rng = random.Random(0)
    for split, n in zip(("train", "validation", "test"), sizes):
        _write(folder, split, [{"document": " ".join(_sentence(rng, 8) for _ in range(3)),
                                "summary": _sentence(rng, 6), "id": f"{split}-{i}"} for i in range(n)])
    return folder


def wmt16_en_ro(folder: Path, sizes: tuple[int, int, int] = (16, 6, 5)) -> Path:
    """wmt/wmt16 ro-en rows: {"translation": {"en": …, "ro": …}}, Romanian with both diacritic forms."""
    rng = random.Random(1)
    for split, n in zip(("train", "validation", "test"), sizes):
        _write(folder, split, [{"translation": {"en": _sentence(rng, 7),
                                                "ro": " ".join(rng.choice(RO) for _ in range(6)) + "."}}
                               for _ in range(n)])
    return folder


def glue(folder: Path, config: str, n: int = 12, words: int = 6) -> Path:
    """nyu-mll/glue rows: sst2 (sentence of `words` words, label, idx) or mnli (premise, hypothesis, label, idx)."""
    rng = random.Random(2)
    splits = ("train", "validation") if config == "sst2" else ("train", "validation_matched",
                                                                "validation_mismatched")
    for split in splits:
        rows = []
        for i in range(n):
            if config == "sst2":
                rows.append({"sentence": _sentence(rng, words), "label": i % 2, "idx": i})
            else:
                rows.append({"premise": _sentence(rng, 8), "hypothesis": _sentence(rng, 5), "label": i % 3,
                             "idx": i})
        _write(folder, split, rows)
    return folder
