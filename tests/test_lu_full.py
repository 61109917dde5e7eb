"""Lu et al.'s "Full" is a transformer trained from scratch: the grid plans it on the paper's backbones, its
Table 1 cells read only from-scratch runs, and pretrained GPT-2 fine-tuned is its own labelled row."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from benchmark.backbones.registry import build_model
from benchmark.baselines import BUILTIN
from benchmark.config import load_config
from benchmark.registry import get_method
from leaderboard import papers, tables
from leaderboard.aggregate import load_groups
from leaderboard.ingest import ingest
from leaderboard.store import engine_for
from leaderboard.synthetic import make_record, write_record

REPO = Path(__file__).resolve().parents[1]


def test_full_scratch_is_random_init_with_every_weight_training() -> None:
    b = BUILTIN["full-scratch"]
    assert (b.method, b.init, b.backbone) == ("full", "random", None)  # the task's backbone, fresh weights
    assert get_method("full").train_all


def test_the_3_layer_gpt2_is_gpt2_small_with_3_layers() -> None:
    small, three = build_model("gpt2", meta=True), build_model("gpt2-3layer", meta=True)
    assert (three.config.n_layer, three.config.n_embd, three.config.n_positions) == (3, 768, 1024)
    per_layer = sum(p.numel() for p in small.h[0].parameters())
    n = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert n(small) - n(three) == 9 * per_layer


def test_every_table1_full_cell_has_a_from_scratch_run_on_the_paper_backbone() -> None:
    cfg = load_config(REPO / "config" / "config.yaml")
    cells = [c for c in papers.load_cells() if c["table_id"] == "lu2021-table1" and c["method"] == "full-scratch"]
    assert len(cells) == 7 and {c["task"]: c["backbone"] for c in cells}["cifar10"] == "gpt2-3layer"
    planned = {(s.paper["task"], s.paper["backbone"]) for s in cfg.specs.values() if s.method_name == "full-scratch"}
    assert {(c["task"], c["backbone"]) for c in cells} == planned
    assert all(s.method["init"] == "random" for s in cfg.specs.values() if s.method_name == "full-scratch")
    # pretrained fine-tuning is still planned, on the paper tasks' own GPT-2
    assert {s.task.backbone for s in cfg.specs.values() if s.method_name == "full" and s.task.task == "cifar10"} \
        == {"gpt2"}


def test_pretrained_fine_tuning_fills_its_own_row_never_the_paper_full_row(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_record(runs, make_record("cifar10", "full", value=71.0, backbone="gpt2"))
    write_record(runs, make_record("cifar10-full", "full-scratch", value=55.0, backbone="gpt2-3layer",
                                   family="cifar10", init="random"))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ingest(runs, url)
    with Session(engine_for(url)) as s:
        groups = load_groups(s)
    view = next(v for v in tables.build_views(groups) if v.table.id == "lu2021-table1")
    rows = {r.method: r for r in view.rows}
    c10 = [c.label for c in view.table.columns].index("C10")
    scratch, tuned = rows["full-scratch"].cells[c10], rows["full"].cells[c10]
    assert (scratch.reproduced.mean, scratch.reported, scratch.reproduced_backbone) == (55.0, 70.3, "gpt2-3layer")
    assert (tuned.reproduced.mean, tuned.reported, tuned.delta) == (71.0, None, None)
    line = next(line for line in tables.to_markdown(view).splitlines() if "not in the paper" in line)
    assert "| 71.00 (n=1)‡ | — |  |" in line  # ‡: synthetic recipe, not the paper's
