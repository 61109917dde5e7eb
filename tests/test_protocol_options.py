"""The reference code's protocol choices as options: the paper's stated protocol is the default, an option switches
to the reference's computation, and the record's `protocol` (and the run digest, through the options and recipe)
says which."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from benchmark.config import load_config
from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.tasks.images import CIFAR10, CIFAR10LRA, GRAY, augment
from benchmark.tasks.homology import AA_ID, RemoteHomology
from test_fpt_tasks import settings, write_images

# ---- Remote homology: TAPE's valid split, long sequences skipped -------------------------------------------------


def homology_folder(folder: Path) -> Path:
    """Train and both eval splits; one sequence of each split is longer than max_tokens=6."""
    rows = {"train": [("MKTAYI", 0), ("MKTAYIAKQR", 1), ("GAV", 2)],
            "validation": [("ACD", 3), ("ACDEFGHIK", 4)],
            "test_fold_holdout": [("WYW", 5), ("WYWYWYWY", 6), ("CC", 7)]}
    for split, items in rows.items():
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps({"primary": p, "fold_label": f}) + "\n" for p, f in items))
    return folder


def homology(tmp_path: Path, **options: object):
    task = RemoteHomology()
    s = settings(task, data_dir=str(homology_folder(tmp_path)), max_tokens=6, **options)
    task.check(s, "tasks.remote-homology")
    task.prepare(s, tmp_path / "prepared")
    return task, s, task.data(s, 1, tmp_path / "prepared")


def test_homology_default_is_the_paper_test_set_with_long_sequences_cut(tmp_path: Path) -> None:
    task, s, data = homology(tmp_path)
    assert data.eval_name == "test_fold_holdout" and len(data.train) == 3 and len(data.eval) == 3
    assert [int(x["labels"]) for x in data.eval] == [5, 6, 7]
    assert data.eval[1]["inputs"].tolist() == [AA_ID[a] for a in "WYWYWY"]  # cut to its first 6 residues
    assert task.protocol(s)["long_sequences"] == "sequences cut to their first 6 residues (paper: ≤ 1024 tokens)"
    assert task.protocol(s)["eval_split"] == "test_fold_holdout (the paper's fold-level test set)"


def test_homology_reference_evaluates_tape_valid_and_skips_long_sequences(tmp_path: Path) -> None:
    task, s, data = homology(tmp_path, eval_split="validation", long_sequences="skip")
    assert data.eval_name == "validation"
    assert [int(x["labels"]) for x in data.eval] == [3]  # ACDEFGHIK (9 > 6) left out, not cut
    assert [int(x["labels"]) for x in data.train] == [0, 2]  # so is MKTAYIAKQR in training
    assert task.protocol(s)["long_sequences"].startswith("sequences over 6 residues left out of training and eval")
    assert task.protocol(s)["eval_split"] == "validation (TAPE's valid split: the reference code's)"


def test_homology_rejects_an_unknown_long_sequence_choice(tmp_path: Path) -> None:
    task = RemoteHomology()
    with pytest.raises(ConfigError, match=r"tasks.h.options.long_sequences: 'drop' is not one of \('truncate', "
                                          r"'skip'\)"):
        task.check(settings(task, long_sequences="drop"), "tasks.h")


# ---- CIFAR-10 LRA: no augmentation (LRA), or the reference's ----------------------------------------------------


def lra(tmp_path: Path, **options: object):
    task = CIFAR10LRA()
    source = tmp_path / "local"
    if not source.exists():
        write_images(source, "img", 32, "RGB")
        task.prepare(settings(task, data_dir=str(source)), tmp_path / "prepared")
    return task, task.data(settings(task, data_dir=str(source), **options), 1, tmp_path / "prepared")


def test_lra_default_has_no_augmentation(tmp_path: Path) -> None:
    task, data = lra(tmp_path)
    assert torch.equal(data.train[3]["inputs"], data.train[3]["inputs"])  # the same pixels every draw
    assert task.protocol(settings(task))["augmentation"] == "none"


def test_lra_reference_augments_training_images_as_the_reference_does(tmp_path: Path) -> None:
    """Grayscale first, then crop / flip / rotate with nearest interpolation (torchvision's RandomRotation default):
    computed here in the reference's order from the same random draws, it equals our sample exactly."""
    task, plain = lra(tmp_path)
    _, data = lra(tmp_path, augment=True)
    g = torch.Generator().manual_seed(1)
    first = data.train[3]["inputs"]
    image = plain.train.images[3].float() / 255
    gray = (image * torch.tensor(GRAY)).sum(-1, keepdim=True).permute(2, 0, 1)  # (1, 32, 32), grayscale first
    expected = augment(gray, g, "nearest").permute(1, 2, 0)
    expected = ((expected - 0.4809) / 0.2391).reshape(1024, 1)
    assert torch.allclose(first, expected, atol=1e-5)
    assert not torch.allclose(first, plain.train[3]["inputs"])  # it is augmented
    # nearest interpolation: every augmented pixel is one of the image's own grey levels or the zero fill
    levels = torch.cat([(gray.flatten() - 0.4809) / 0.2391, torch.tensor([-0.4809 / 0.2391])])
    assert (first.flatten()[:, None] - levels[None]).abs().min(1).values.max() < 1e-5
    assert torch.equal(data.eval[3]["inputs"], plain.eval[3]["inputs"])  # evaluation images untouched
    assert "nearest interpolation" in task.protocol(settings(task, augment=True))["augmentation"]


def test_cifar10_keeps_its_bilinear_rotation() -> None:
    """CIFAR-10's default protocol is untouched (it moves only with every FPT task's version); C10-LRA's
    augmentation change gives it a version of its own above that."""
    from benchmark.tasks.fpt import FPTTask

    assert (CIFAR10.rotation, CIFAR10LRA.rotation) == ("bilinear", "nearest")
    assert CIFAR10.version == FPTTask.version == "2" and CIFAR10LRA.version == "3"


def test_nearest_and_bilinear_rotations_differ() -> None:
    x = torch.rand(1, 32, 32)
    a, b = (augment(x, torch.Generator().manual_seed(0), m) for m in ("nearest", "bilinear"))
    assert not torch.allclose(a, b)


# ---- FPT batch size: the recipe's 16, or the reference's 4 ------------------------------------------------------


def test_fpt_batch_size_is_recorded_and_enters_the_digest() -> None:
    cfg = load_config({"grid": [{"tasks": ["bit-xor"], "methods": ["fpt"]},
                                {"tasks": ["bit-xor"], "methods": ["fpt"], "train": {"batch_size": 4}}]})
    specs = sorted(cfg.specs.values(), key=lambda s: s.train["batch_size"])
    assert [s.train["batch_size"] for s in specs] == [4, 16] and specs[0].digest != specs[1].digest
    task = RemoteHomology()
    said = [task.protocol(dataclasses.replace(TaskSettings.of(task), train=s.train))["batch_size"] for s in specs]
    assert said == ["4 (the reference code's default)", "16 (within the paper's 2–16)"]


def test_the_paper_grid_documents_the_reference_instances() -> None:
    cfg = load_config("config/config.yaml")
    assert cfg.task_spec("remote-homology-ref").options["long_sequences"] == "skip"
    assert cfg.task_spec("remote-homology-ref").options["eval_split"] == "validation"
    assert cfg.task_spec("cifar10-lra-ref").options["augment"] is True
    assert cfg.task_spec("cifar10-lra").options["augment"] is False
    assert cfg.task_spec("remote-homology").options["long_sequences"] == "truncate"
    assert math.isclose(cfg.task_spec("remote-homology").train["learning_rate"], 1e-4)
