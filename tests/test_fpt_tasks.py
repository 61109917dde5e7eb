"""Lu et al. tasks: seeded generators (shapes, determinism, label balance), ListOps answers, data loaders on
small fixtures written in the Hub's schema (nothing downloads)."""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.errors import ConfigError
from benchmark.tasks.bits import BitMemory, BitXor
from benchmark.spec import TaskSettings
from benchmark.tasks.fpt import pad_tokens
from benchmark.tasks.homology import AA_ID, FOLDS, RemoteHomology, encode
from benchmark.tasks.images import CIFAR10, CIFAR10LRA, MNIST, Digits
from benchmark.tasks.listops import VOCAB, ListOps, solve


def settings(task, **options) -> TaskSettings:
    return TaskSettings.of(task, backbone="tiny-bert", **options)


def draws(task, n: int, seed: int = 3, **options) -> list[dict]:
    """`n` examples of the task's held-out set for `seed`."""
    held_out = task.data(settings(task, **{"eval_size": n, **options}), seed, None).eval
    return [held_out[i] for i in range(n)]


def same(a: list[dict], b: list[dict]) -> bool:
    return all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


# ---- bit tasks --------------------------------------------------------------------------------------------

def test_bit_memory_paper_shapes_masking_and_balance():
    xs = draws(BitMemory(), 40, eval_size=40)
    assert same(xs, draws(BitMemory(), 40, eval_size=40))
    assert not same(xs, draws(BitMemory(), 40, seed=4, eval_size=40))
    assert xs[0]["inputs"].shape == (120, 50) and xs[0]["labels"].shape == (1000,)
    labels = torch.stack([x["labels"] for x in xs]).float()
    assert abs(labels.mean().item() - 0.5) < 0.01  # 40,000 bits
    for x in xs:
        strings = x["inputs"].reshape(6, 1000)
        assert set(strings[:5].unique().tolist()) == {-1.0, 1.0}
        query, target = strings[5], 2 * x["labels"] - 1
        visible = query != 0
        assert torch.equal(query[visible], target[visible].float())  # unmasked bits are the original
        assert any(torch.equal(strings[i], target.float()) for i in range(5))  # the query is one of the five
    masked = torch.stack([x["inputs"].reshape(6, 1000)[5] == 0 for x in xs]).float().mean()
    assert abs(masked.item() - 0.5) < 0.01


def test_bit_memory_sizes_configurable_and_checked():
    x = draws(BitMemory(), 1, n_bits=20, token_dim=10)[0]
    assert x["inputs"].shape == (12, 10) and x["labels"].shape == (20,)
    with pytest.raises(ConfigError, match="not a multiple of token_dim"):
        BitMemory().check(settings(BitMemory(), n_bits=25, token_dim=10), "tasks.bit-memory")


def test_bit_xor_is_the_xor_of_its_halves():
    xs = draws(BitXor(), 50)
    for x in xs:
        a, b = x["inputs"][:5, 0].long(), x["inputs"][5:, 0].long()
        assert x["inputs"].shape == (10, 1) and torch.equal(x["labels"], a ^ b)


# ---- ListOps ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, answer", [
    ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
    ("[MIN 5 [MAX 1 3 ] 8 ]", 3),
    ("[MED 1 7 3 ]", 3),
    ("[MED 1 2 3 4 ]", 2),  # even count: the middle pair's mean, truncated (LRA's int(np.median))
    ("[MED 4 5 ]", 4),
    ("[SM 5 6 7 ]", 8),
    ("[SM [MAX 9 9 ] [SM 9 2 ] 3 ]", 3),
    ("[MAX [MED [SM 3 4 ] 1 0 ] [MIN 6 [MAX 2 2 ] ] ]", 2),
    ("7", 7),
    ("( ( ( [MAX 2 ) 9 ) ] )", 9),  # LRA's printer adds binary-tree parentheses
])
def test_listops_answers(text, answer):
    assert solve(text) == answer


@pytest.mark.parametrize("bad", ["[MAX 2 9", "[MAX 2 ] ]", "[FOO 1 ]"])
def test_listops_rejects_malformed(bad):
    with pytest.raises((ValueError, IndexError)):
        solve(bad)


def test_listops_generator_deterministic_labelled_and_balanced():
    opts = {"max_depth": 4, "max_args": 4, "min_length": 5, "max_length": 40, "eval_size": 1000}
    xs = draws(ListOps(), 1000, **opts)
    assert same(xs, draws(ListOps(), 1000, **opts))
    lengths = [len(x["inputs"]) for x in xs]
    assert 5 <= min(lengths) and max(lengths) <= 40
    for x in xs:
        tokens = [VOCAB[i] for i in x["inputs"].tolist()]
        assert "]" in tokens and solve(" ".join(tokens)) == int(x["labels"])  # brackets kept, label = answer
    counts = collections.Counter(int(x["labels"]) for x in xs)
    assert set(counts) == set(range(10)) and max(counts.values()) < 0.3 * len(xs)


def test_listops_paper_defaults_fit_a_512_position_table_and_say_so():
    """LRA's lengths (501–1999 tokens) are cut to 512 by default, so BERT (512 positions) and GPT-2 (1024) run."""
    task = ListOps()
    xs = draws(task, 8)
    lengths = [len(x["inputs"]) for x in xs]
    assert all(501 <= n <= 512 for n in lengths) and 512 in lengths  # cut at 512
    protocol = task.protocol(settings(task))
    assert "first 512 tokens" in protocol["truncation"] and "501–1999" in protocol["lengths"]
    whole = draws(task, 4, max_tokens=None)
    assert all(501 <= len(x["inputs"]) <= 1999 for x in whole)


def test_listops_reads_lra_tsv(tmp_path):
    rows = [("( ( [MAX 2 ) 9 ) ]", 9), ("( ( ( [SM 5 ) 6 ) 7 ) ]", 8)]
    for name in ("basic_train.tsv", "basic_val.tsv", "basic_test.tsv"):
        (tmp_path / name).write_text("Source\tTarget\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    task = ListOps()
    task.check(settings(task, data_dir=str(tmp_path)), "tasks.listops")
    data = task.data(settings(task, data_dir=str(tmp_path)), 1, None)
    first = data.train[0]
    assert [VOCAB[i] for i in first["inputs"]] == ["[MAX", "2", "9", "]"] and int(first["labels"]) == 9
    batch = pad_tokens([data.eval[0], data.eval[1]])
    assert batch["inputs"].shape == (2, 5) and batch["attention_mask"].sum(1).tolist() == [4, 5]
    with pytest.raises(ConfigError, match="basic_train.tsv"):
        task.check(settings(task, data_dir=str(tmp_path / "nowhere")), "tasks.listops")


# ---- images -----------------------------------------------------------------------------------------------

def test_digits_are_scikit_learns_digits_exactly():
    """The task reads sklearn's bundled file itself (not importing sklearn.datasets saves ~0.4 s a job): the same
    1,797 images, grey levels 0–16 scaled to 0–255, and labels as `load_digits()`."""
    import numpy as np
    from sklearn.datasets import load_digits

    from benchmark.tasks.images import _digits

    images, labels = _digits()
    bunch = load_digits()
    assert images.shape == (1797, 8, 8, 1) and images.dtype == torch.uint8
    assert np.array_equal(images[..., 0].numpy(), (bunch.images * 255 / 16).round().astype(np.uint8))
    assert np.array_equal(labels.numpy(), bunch.target) and labels.dtype == torch.long


def test_digits_split_shapes_and_balance():
    task = Digits()
    data = task.data(settings(task), 1, None)
    assert (len(data.train), len(data.eval)) == (1438, 359)
    x = data.eval[0]
    assert x["inputs"].shape == (16, 4) and x["inputs"].dtype == torch.float32
    again = task.data(settings(task), 1, None)
    assert same([data.eval[i] for i in range(20)], [again.eval[i] for i in range(20)])
    other = task.data(settings(task), 2, None)
    assert not same([data.eval[i] for i in range(20)], [other.eval[i] for i in range(20)])
    counts = collections.Counter(data.eval.labels.tolist())
    assert set(counts) == set(range(10)) and max(counts.values()) < 0.15 * len(data.eval)


def write_images(folder: Path, column: str, side: int, mode: str, n: int = 12) -> None:
    """A tiny dataset in the Hub's schema (image column + label), as `<split>.parquet`."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        shape = (side, side, 3) if mode == "RGB" else (side, side)
        images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(n)]
        features = datasets.Features({column: datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
        ds = datasets.Dataset.from_dict({column: images, "label": [i % 10 for i in range(n)]}, features=features)
        ds.to_parquet(str(folder / f"{split}.parquet"))


@pytest.mark.parametrize("task, column, side, mode, shape", [
    (MNIST(), "image", 28, "L", (49, 16)),
    (CIFAR10(), "img", 32, "RGB", (64, 48)),
    (CIFAR10LRA(), "img", 32, "RGB", (1024, 1)),
])
def test_hub_image_tasks_from_a_local_copy(tmp_path, task, column, side, mode, shape):
    source, prepared = tmp_path / "local", tmp_path / "prepared"
    write_images(source, column, side, mode)
    s = settings(task, data_dir=str(source))
    task.check(s, f"tasks.{task.name}")
    task.prepare(s, prepared)
    data = task.data(s, 1, prepared)
    x = data.train[3]
    assert x["inputs"].shape == shape and int(x["labels"]) == 3
    assert len(data.eval) == 12 and data.eval_name == "test"
    if task.options["augment"]:  # augmentation: random per draw, identical for a seed
        again = task.data(s, 1, prepared)
        assert torch.equal(again.train[3]["inputs"], x["inputs"])
        assert not torch.equal(data.train[3]["inputs"], x["inputs"])
        assert torch.equal(data.eval[3]["inputs"], data.eval[3]["inputs"])  # no augmentation at evaluation
    with pytest.raises(ConfigError, match="train.parquet"):
        task.check(settings(task, data_dir=str(tmp_path)), f"tasks.{task.name}")


def test_remote_homology_from_local_jsonl(tmp_path):
    rows = {"train": [("MKTAYIAK", 0), ("GAVLIBZ", 1194)], "test_fold_holdout": [("ACDEFGHIKLMNPQRSTVWYJ", 7)]}
    for split, items in rows.items():
        (tmp_path / f"{split}.jsonl").write_text(
            "".join(json.dumps({"primary": p, "fold_label": f}) + "\n" for p, f in items))
    task = RemoteHomology()
    s = settings(task, data_dir=str(tmp_path), max_tokens=20)
    task.check(s, "tasks.remote-homology")
    task.prepare(s, tmp_path / "prepared")
    data = task.data(s, 1, tmp_path / "prepared")
    assert task.layout(s.options).classes == FOLDS == 1195
    assert data.eval[0]["inputs"].tolist() == list(range(1, 21))  # the 20 standard residues; J cut at 20
    assert encode("mj", None).tolist() == [AA_ID["M"], AA_ID["X"]]  # lower case read, unknown letters are X
    batch = data.collate([data.train[0], data.train[1]])
    assert batch["inputs"].shape == (2, 8) and batch["labels"].tolist() == [0, 1194]

