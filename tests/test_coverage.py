"""`petl-bench coverage`: per paper, reported cells / with a planned run / filled / unreachable and why."""
from __future__ import annotations

import subprocess
from pathlib import Path

from benchmark.config import load_config
from conftest import REPO, petl_bench
from leaderboard.aggregate import parse_sizes
from leaderboard.coverage import coverage, filled_cells, planned_points, why_unreachable
from leaderboard.ingest import ingest
from leaderboard.papers import PaperTable, load_cells, load_tables
from leaderboard.synthetic import make_record, write_record

FPT_XOR = {"tasks": {"bit-xor": {"backbone": "gpt2"}}, "grid": [{"tasks": ["bit-xor"], "methods": ["fpt"]}]}


def test_the_paper_grid_plans_every_mapped_cell() -> None:
    out = subprocess.run([petl_bench(), "coverage", "--config", "config/config.yaml"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "he2022: 157 reported cells, 153 with a planned run, 0 filled, 4 unreachable",
        "    4 × quoted by the paper from another source, not mapped to a method",
        "lu2021: 133 reported cells, 133 with a planned run, 0 filled, 0 unreachable"]


def test_one_method_on_one_task_reaches_its_cells_and_fills_them(tmp_path: Path) -> None:
    # fpt on XOR answers Table 1, the modality table, the ablation's "+ positions" row and the convergence table
    lu = {c.paper: c for c in coverage(load_config(FPT_XOR))}["lu2021"]
    assert (lu.reported, lu.planned, len(lu.unreachable)) == (133, 4, 129)
    assert ("Table 1 / LSTM / bit-xor", "no planned run of lstm on bit-xor") in lu.unreachable
    runs = tmp_path / "runs"
    write_record(runs, make_record("bit-xor", "fpt", value=99.0, backbone="gpt2"))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ingest(runs, url)
    filled = filled_cells(url)
    assert {(t, task, m) for t, _, task, m in filled} == {
        ("lu2021-table1", "bit-xor", "accuracy"), ("lu2021-modality", "bit-xor", "accuracy"),
        ("lu2021-ablation", "bit-xor", "accuracy")}
    assert {c.paper: c for c in coverage(load_config(FPT_XOR), filled)}["lu2021"].filled == 3


def test_a_size_budget_is_reached_through_the_default_runs_sizes() -> None:
    """prefix's default is l=200: the one planned default run answers Table 4's, Table 6's and Figure 5's l=200."""
    raw = {"grid": [{"tasks": ["wmt16-en-ro"], "methods": ["prefix"], "budgets": ["default"]}]}
    cfg = load_config(raw)
    points = planned_points(cfg)
    reached = {(c["table"], c["row"], c["budget"]) for c in load_cells()
               if c["paper"] == "he2022" and why_unreachable(c, points) is None}
    assert reached == {("Table 4", "Prefix tuning, l=200", "l200"), ("Table 6", "Prefix tuning, l=200", "l200"),
                       ("Figure 5", "Prefix tuning, l=200", "l200")}
    assert {c.paper: c for c in coverage(cfg)}["he2022"].planned == 3
    l30 = next(c for c in load_cells() if c["table"] == "Table 4" and c["budget"] == "l30" and c["method"] == "prefix")
    assert why_unreachable(l30, points) == "prefix on wmt16-en-ro is not planned at budget l30"



def _answers(point: tuple, table: PaperTable, row: dict, column: int) -> bool:
    """Whether a planned (paper task, backbone, method, budget, sizes) point answers a paper row's column."""
    task, backbone, method, budget, sizes = point
    budget_of_row = str(row.get("budget") or "default")
    wanted = parse_sizes(budget_of_row) or {}
    same_budget = budget_of_row == budget or bool(wanted) and all(dict(sizes).get(k) == v for k, v in wanted.items())
    same_backbone = not row.get("match_backbone", table.match_backbone) or row["backbone_per_column"][column] == backbone
    return table.columns[column].task == task and row.get("method") == method and same_budget and same_backbone


def test_every_run_the_paper_grid_plans_answers_a_row_of_a_paper_table() -> None:
    """No stray block: each planned run answers some paper row (a reported cell, or a row labelled as not in the
    paper); the foundation's `lora` block on bit-xor answered none and cost 3 jobs."""
    slots = [(t, r, i) for t in load_tables() for r in t.rows for i in range(len(t.columns))]
    stray = sorted({p[:4] for p in planned_points(load_config("config/config.yaml"))
                    if not any(_answers(p, *slot) for slot in slots)})
    assert stray == []
