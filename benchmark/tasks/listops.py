"""ListOps (Long Range Arena): evaluate nested MAX / MIN / MED / SUM_MOD expressions over digits.

Either generated here from the seed (the LRA grammar, with depth, argument-count and length limits)
or read from LRA's tsv files (`basic_train.tsv`, `basic_val.tsv`, `basic_test.tsv`, columns
Source and Target) when `data_dir` is set. Unlike the reference code, the closing brackets are
tokens (its tokenizer dropped them, which makes expressions ambiguous — LRA issue #20). Inputs are cut
to `max_tokens` (default 512, the paper's "≤ 512 tokens" and the reference code's truncation) so that
LRA's 501–1999-token expressions fit every paper backbone's position table (BERT 512, GPT-2 1024); the
record's protocol says so. `max_tokens: null` keeps whole expressions (for backbones without a limit). LRA's strings also carry
"( … )" from its binary-tree printer; they add no information and are dropped unless `keep_parens`.

Sample: inputs (length,) long token ids (0 = padding), labels () long in 0–9.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path
from statistics import median
from typing import Any, Callable, Union

import torch

from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.tasks.base import TaskData
from benchmark.tasks.bits import FixedSet, Sample, SampleStream
from benchmark.tasks.fpt import COMMON, FPTTask, Layout, Listed, pad_tokens

OPS: dict[str, Callable[[list[int]], int]] = {
    "[MAX": max,
    "[MIN": min,
    "[MED": lambda xs: int(median(xs)),  # LRA: int(np.median): the mean of the middle pair, truncated
    "[SM": lambda xs: sum(xs) % 10,
}
END = "]"
VOCAB = ["<pad>", *map(str, range(10)), *OPS, END, "(", ")"]
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
LRA_FILES = {"train": "basic_train.tsv", "eval": "basic_test.tsv"}

Tree = Union[int, tuple[str, list["Tree"]]]


def random_tree(rng: random.Random, depth: int, max_depth: int, max_args: int, value_p: float) -> Tree:
    """LRA's grammar: below `max_depth` a node is a digit w.p. value_p (LRA: 0.75), else an operator over
    2..max_args arguments."""
    if depth >= max_depth or rng.random() < value_p:
        return rng.randrange(10)
    op = rng.choice(list(OPS))
    return op, [random_tree(rng, depth + 1, max_depth, max_args, value_p) for _ in range(rng.randint(2, max_args))]


def tokens(tree: Tree) -> list[str]:
    """`[MAX 2 [MIN 3 4 ] ]`-style tokens, brackets kept."""
    if isinstance(tree, int):
        return [str(tree)]
    op, args = tree
    return [op, *(t for a in args for t in tokens(a)), END]


def value(tree: Tree) -> int:
    if isinstance(tree, int):
        return tree
    op, args = tree
    return OPS[op]([value(a) for a in args])


def parse(text: str | list[str]) -> Tree:
    """The tree of an expression in LRA's notation; "(" and ")" are ignored."""
    toks = [t for t in (text.split() if isinstance(text, str) else text) if t not in ("(", ")")]
    stack: list[tuple[str, list[Tree]]] = []
    root: Tree | None = None
    for t in toks:
        if t in OPS:
            stack.append((t, []))
            continue
        if t == END:
            node: Tree = stack.pop()
        elif t.isdigit() and len(t) == 1:
            node = int(t)
        else:
            raise ValueError(f"unknown ListOps token {t!r}")
        if stack:
            stack[-1][1].append(node)
        else:
            root = node
    if stack or root is None:
        raise ValueError(f"unbalanced ListOps expression: {' '.join(toks)[:80]}")
    return root


def solve(text: str) -> int:
    """The answer of an expression in LRA's notation."""
    return value(parse(text))


def encode(toks: list[str], keep_parens: bool, max_tokens: int | None) -> torch.Tensor:
    ids = [TOKEN_ID[t] for t in toks if keep_parens or t not in ("(", ")")]
    return torch.tensor(ids[:max_tokens] if max_tokens else ids, dtype=torch.long)


class ListOps(FPTTask):
    """10-way classification of an expression's value; generated from the seed or read from LRA's files."""

    name = "listops"
    padded = True
    options = {**COMMON, "max_depth": 10, "max_args": 10, "value_p": 0.75, "min_length": 501,
               "max_length": 1999, "max_tokens": 512, "keep_parens": False, "train_size": None}
    smoke = {**FPTTask.smoke, "options": {"eval_size": 8, "max_depth": 3, "max_args": 3, "min_length": 5,
                                          "max_length": 24}}

    def check(self, settings: TaskSettings, where: str) -> None:
        super().check(settings, where)
        source = settings.data_dir
        if source is not None:
            missing = [f for f in LRA_FILES.values() if not (Path(source) / f).is_file()]
            if missing:
                raise ConfigError(f"{where}.data_dir: {source} lacks {', '.join(missing)} (LRA's ListOps tsv files)")

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        opts = settings.options
        cut = opts["max_tokens"]
        return {**super().protocol(settings),
                "lengths": (f"expressions of {opts['min_length']}–{opts['max_length']} tokens, closing brackets kept"
                            if not settings.data_dir else "LRA's files, closing brackets kept"),
                "truncation": (f"inputs cut to their first {cut} tokens (paper: ≤ 512; the reference code's "
                               "truncation), so longer expressions lose their tail" if cut else "none")}

    def layout(self, opts: dict[str, Any]) -> Layout:
        return Layout(0, 1, 1, 10, vocab_size=len(VOCAB))

    def positions_used(self, opts: dict[str, Any]) -> int | None:
        return opts["max_tokens"]

    def draw(self, opts: dict[str, Any]) -> Callable[[torch.Generator], Sample]:
        """Rejection-sample trees until the token count lies within [min_length, max_length]."""
        def sample(g: torch.Generator) -> Sample:
            rng = random.Random(int(torch.randint(2**62, (), generator=g)))  # pure Python: fast rejection
            while True:
                tree = random_tree(rng, 1, opts["max_depth"], opts["max_args"], opts["value_p"])
                toks = tokens(tree)
                if opts["min_length"] <= len(toks) <= opts["max_length"]:
                    return {"inputs": encode(toks, True, opts["max_tokens"]), "labels": torch.tensor(value(tree))}
        return sample

    def data(self, settings: TaskSettings, seed: int, data_path: Path | None) -> TaskData:
        opts = settings.options
        if settings.data_dir:
            return self._lra(Path(settings.data_dir), opts, seed)
        draw = self.draw(opts)
        train = (FixedSet(draw, seed, opts["train_size"], offset=0) if opts["train_size"]
                 else SampleStream(draw, seed))
        return TaskData(train, FixedSet(draw, seed, opts["eval_size"]), pad_tokens, eval_name="held-out")

    def _lra(self, folder: Path, opts: dict[str, Any], seed: int) -> TaskData:
        def read(name: str, limit: int | None) -> Listed:
            with open(folder / name, newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
            if limit and limit < len(rows):
                keep = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:limit]
                rows = [rows[i] for i in sorted(keep.tolist())]
            return Listed([{"inputs": encode(r["Source"].split(), opts["keep_parens"], opts["max_tokens"]),
                            "labels": torch.tensor(int(r["Target"]))} for r in rows])
        return TaskData(read(LRA_FILES["train"], opts["train_size"]), read(LRA_FILES["eval"], opts["eval_size"]),
                        pad_tokens, eval_name="test")
