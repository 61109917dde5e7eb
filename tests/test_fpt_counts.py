"""Lu et al.'s own trainable count counts only the position rows a task reads (64 for CIFAR-10), while every row of
the table trains; the record and the run page give that count beside ours."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.backbones.fpt import FPTModel
from benchmark.backbones.registry import build_model
from benchmark.methods.presets import PRESETS
from benchmark.registry import get_method
from benchmark.spec import TaskSettings
from benchmark.tasks.bits import BitMemory, BitXor
from benchmark.tasks.images import CIFAR10, CIFAR10LRA
from benchmark.tasks.listops import ListOps
from leaderboard.ingest import ingest
from leaderboard.site import render_site
from leaderboard.synthetic import make_record, write_record

# the paper's printed counts: output layer (no bias) + input (16+1)·d + layer norms 4·d·L + 64 positions × d
PAPER = {"gpt2": (106_752, 768), "gpt2-medium": (191_488, 1024), "gpt2-large": (300_800, 1280)}


def fpt_cifar10(backbone: str) -> FPTModel:
    model = FPTModel(build_model(backbone, meta=True), 48, 1, 1, 10)
    PRESETS["fpt"].apply(model)
    return model


@pytest.mark.parametrize("backbone", sorted(PAPER))
def test_our_count_by_the_papers_convention_differs_from_theirs_by_what_their_formula_leaves_out(backbone: str):
    printed, d = PAPER[backbone]
    model = fpt_cifar10(backbone)
    got = CIFAR10().count_conventions(model, TaskSettings.of(CIFAR10()))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert got == {"positions_used": 64, "trainable_positions_used": trainable - (1024 - 64) * d}
    # the paper counts a 16+1-wide input (CIFAR-10's patches are 48 wide), no output bias and no final LayerNorm
    assert got["trainable_positions_used"] - printed == (48 - 16) * d + 10 + 2 * d
    if backbone == "gpt2":
        assert trainable == 870_154  # the whole 1,024-row table trains, as in the reference code


def test_positions_used_per_task() -> None:
    assert BitXor().positions_used(BitXor.options) == 10
    assert BitMemory().positions_used(BitMemory.options) == 120
    assert CIFAR10().positions_used(CIFAR10.options) == 64
    assert CIFAR10LRA().positions_used(CIFAR10LRA.options) == 1024
    assert ListOps().positions_used(ListOps.options) == 512


def test_no_convention_when_every_row_is_read_or_positions_are_frozen() -> None:
    lra = FPTModel(build_model("gpt2", meta=True), 1, 1, 1, 10)
    PRESETS["fpt"].apply(lra)
    assert CIFAR10LRA().count_conventions(lra, TaskSettings.of(CIFAR10LRA())) == {}  # 1,024 of 1,024 read
    frozen = FPTModel(build_model("gpt2", meta=True), 48, 1, 1, 10)
    get_method("fpt-ln-input").apply(frozen)
    assert CIFAR10().count_conventions(frozen, TaskSettings.of(CIFAR10())) == {}


def test_the_run_page_shows_the_papers_count_beside_ours(tmp_path: Path) -> None:
    record = make_record("cifar10", "fpt", value=68.0, backbone="gpt2")
    record["params"].update({"trainable": 870_154, "positions_used": 64, "trainable_positions_used": 132_874})
    write_record(tmp_path / "runs", record)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ingest(tmp_path / "runs", url)
    render_site(url, tmp_path / "site")
    page = next((tmp_path / "site" / "runs").glob("cifar10__fpt__*.html")).read_text()
    assert "trainable, Lu et al.'s count</th><td>132,874" in page
    assert "counted for the 64 rows the task reads" in page
