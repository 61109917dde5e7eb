"""Shared helpers for the design-space tests: tiny random backbones (built once, copied per test) and inputs."""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import pytest
import torch
from torch import nn

from benchmark.backbones.registry import build_model
from benchmark.methods.presets import PRESETS

TINY = ("tiny-bert", "tiny-roberta", "tiny-gpt2", "tiny-bart", "tiny-mbart", "tiny-t5")
SEQ2SEQ = ("tiny-bart", "tiny-mbart", "tiny-t5")
NAMED = tuple(n for n in PRESETS if n not in ("fpt", "fpt-random"))  # FPT's presets are tested with FPT tasks


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, above all on a shared machine; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


VOCAB = 1000  # the registry's tiny configs keep BERT's 30,522 word pieces; tests need far fewer


@lru_cache(maxsize=None)
def _pristine(name: str, head: str) -> nn.Module:
    kwargs = {"num_labels": 3} if head == "seq-cls" else {}
    return build_model(name, head, init="random", seed=0, vocab_size=VOCAB, **kwargs).eval()


def tiny(name: str, head: str = "base") -> nn.Module:
    """A fresh copy of a tiny random backbone (the same weights every call)."""
    return copy.deepcopy(_pristine(name, head))


def meta(name: str, head: str = "base") -> nn.Module:
    """The same architecture on the meta device: counting needs no weights."""
    return build_model(name, head, meta=True)


def inputs(name: str, seed: int = 0) -> dict[str, Any]:
    """Two sequences, the second right-padded; seq2seq backbones also get decoder inputs."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (2, 7), generator=g)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if name in SEQ2SEQ:
        out["decoder_input_ids"] = torch.randint(5, 1000, (2, 4), generator=g)
    return out


def hidden(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The backbone's last hidden state (decoder side for seq2seq), the real positions only; a task model's
    logits."""
    out = model(**batch)
    if not hasattr(out, "last_hidden_state"):
        return out.logits
    out = out.last_hidden_state
    if "decoder_input_ids" in batch:
        return out
    return out * batch["attention_mask"][..., None]


def supported(backbone: str, method: str) -> bool:
    """Pairs that are rejected on purpose (and tested as errors): BitFit on bias-free T5."""
    return not (backbone == "tiny-t5" and method == "bitfit")
