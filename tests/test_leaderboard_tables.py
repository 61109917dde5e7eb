"""Reported numbers as data, and paper-style tables (Markdown, LaTeX) compared to expected text."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from leaderboard import papers, tables
from leaderboard.aggregate import load_groups
from leaderboard.ingest import ingest
from leaderboard.store import engine_for
from leaderboard.synthetic import make_record, write_record

TOY = """\
paper: toy
citation: "Toy et al. 2099"
defaults: {backbone: gpt2}
tables:
  - id: toy-t1
    table: Table 1
    title: "Toy table"
    columns:
      - {task: bit-xor, metric: accuracy, label: XOR}
      - {task: listops, metric: accuracy, label: ListOps}
    rows:
      - {row: "FPT", method: fpt, budget: default, values: [100, 38.4]}
      - {row: "Full", method: full, budget: default, values: [99.5, null], flags: ["†", null]}
      - {row: "Quoted", method: null, values: [50, 17.1], note: "quoted from elsewhere"}
"""

EXPECTED_MD = """\
### toy — Table 1: Toy table

| Row | Method / budget | Params | XOR reproduced | XOR reported | XOR Δ | ListOps reproduced | ListOps reported | ListOps Δ |
|---|---|---|---:|---:|---:|---:|---:|---:|
| FPT | fpt / default |  | 99.00 ± 1.00 (n=3)‡ | 100 |  | missing | 38.4 |  |
| Full | full / default |  | 70.00† (n=1) | 99.5† | -29.50 |  |  |  |
| Quoted | not mapped |  | missing | 50 |  | missing | 17.1 |  |

Reproduced: mean ± sample std over finished seeds (n); Δ = reproduced − reported, only where the setup is the paper's; missing = no finished run; † diverged; ‡ other setup.
‡ bit-xor: not the paper's setup, so no Δ: backbone minilm-l6 (paper gpt2); max_steps 100 (paper recipe 2000)
Quoted: quoted from elsewhere

Source: Toy et al. 2099.
"""

EXPECTED_TEX_ROWS = r"""
FPT & fpt / default &  & 99.00 $\pm$ 1.00 (n=3)\ddag{} & 100 &  & missing & 38.4 &  \\
Full & full / default &  & 70.00\dag{} (n=1) & 99.5\dag{} & -29.50 &  &  &  \\
Quoted & not mapped &  & missing & 50 &  & missing & 17.1 &  \\
\bottomrule
"""


@pytest.fixture(scope="module")
def toy_views(tmp_path_factory: pytest.TempPathFactory) -> list[tables.TableView]:
    tmp = tmp_path_factory.mktemp("toy")
    (tmp / "rep").mkdir()
    (tmp / "rep" / "toy.yaml").write_text(TOY)
    runs = tmp / "runs"
    for seed, value in ((1, 98.0), (2, 99.0), (3, 100.0)):
        write_record(runs, make_record("bit-xor", "fpt", seed=seed, value=value, backbone="minilm-l6"))
    write_record(runs, make_record("bit-xor", "full", seed=1, status="diverged", value=70.0, backbone="gpt2",
                                   max_steps=2000))  # the paper's backbone, task options and recipe length
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    ingest(runs, url)
    with Session(engine_for(url)) as s:
        groups = load_groups(s)
    return tables.build_views(groups, papers.load_tables(tmp / "rep"))


def test_markdown_matches_expected(toy_views: list[tables.TableView]) -> None:
    assert tables.to_markdown(toy_views[0]) == EXPECTED_MD


def test_latex_is_booktabs_and_matches_expected(toy_views: list[tables.TableView]) -> None:
    tex = tables.to_latex(toy_views[0])
    assert r"\toprule" in tex and r"\midrule" in tex and r"\cmidrule(lr){4-6}\cmidrule(lr){7-9}" in tex
    assert EXPECTED_TEX_ROWS in tex
    assert r"\ddag{} bit-xor: not the paper's setup, so no $\Delta$: backbone minilm-l6 (paper gpt2)" in tex


def test_latex_escapes_specials() -> None:
    assert tables.tex("a_b & 50% #1 {x} ±") == r"a\_b \& 50\% \#1 \{x\} $\pm$"


def test_write_tables_outputs(toy_views: list[tables.TableView], tmp_path: Path) -> None:
    tables.write_tables(toy_views, tmp_path / "tables", tmp_path / "data")
    assert (tmp_path / "tables" / "toy-t1.md").read_text() == EXPECTED_MD
    assert {p.suffix for p in (tmp_path / "data").iterdir()} == {".md", ".tex", ".csv", ".json"}
    csv_lines = (tmp_path / "data" / "toy-t1.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 5  # header + one line per reported number


def test_every_paper_number_is_data() -> None:
    cells = papers.load_cells()
    per_table = Counter(c["table_id"] for c in cells)
    assert per_table == {
        "he2022-table2": 12, "he2022-table3": 16, "he2022-table4": 8, "he2022-table5": 15, "he2022-table6": 44,
        "he2022-table12": 36, "he2022-figure5": 26, "lu2021-table1": 21, "lu2021-modality": 35,
        "lu2021-scaling": 6, "lu2021-ablation": 49, "lu2021-backbones": 8, "lu2021-convergence": 14}
    for c in cells:
        for k in ("paper", "table", "row", "task", "metric", "backbone", "value", "citation"):
            assert c[k] not in (None, ""), (k, c)
    keys = [(c["table_id"], c["row"], c["task"], c["metric"]) for c in cells]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("table,row,task,metric,value,backbone,method,budget", [
    ("he2022-figure5", "BitFit", "xsum", "rouge2", 17.32, "bart-large", "bitfit", "default"),
    ("he2022-figure5", "Adapter (ffn), r=30", "wmt16-en-ro", "bleu_tokenized", 33.0, "mbart-large-cc25", "sa-ffn",
     "r30"),
    ("he2022-figure5", "Adapter (ffn), r=1024", "xsum", "rouge2", 20.98, "bart-large", "sa-ffn", "r1024"),
    ("he2022-table6", "MAM adapter, l=30, r=512", "wmt16-en-ro", "bleu_tokenized", 37.5, "mbart-large-cc25", "mam",
     "l30-r512"),
    ("he2022-table6", "MAM adapter, l=30, r=512", "xsum", "rouge2", 21.90, "bart-large", "mam", "l30-r512"),
    ("he2022-table2", "LoRA", "mnli", "accuracy", 87.2, "roberta-base", "lora", "0.5pct"),
    ("he2022-table4", "MH PA (attn), r=30", "wmt16-en-ro", "bleu_tokenized", 35.3, "mbart-large-cc25", "mh-pa", "r30"),
    ("lu2021-table1", "FPT (GPT-2)", "cifar10", "accuracy", 72.1, "gpt2-large", "fpt", "default"),
    ("lu2021-table1", "LSTM", "bit-xor", "accuracy", 50.1, "lstm", "lstm", "default"),
    ("lu2021-table1", "Full (trained from scratch)", "cifar10", "accuracy", 70.3, "gpt2-3layer", "full-scratch",
     "default"),
    ("lu2021-scaling", "Random, GPT-2 medium", "cifar10", "accuracy", 64.0, "gpt2-medium", "fpt-random", "default"),
    ("lu2021-convergence", "Random init", "cifar10-lra", "steps_to_converge", 6e5, "gpt2", "fpt-random", "default"),
])
def test_spot_values(table: str, row: str, task: str, metric: str, value: float, backbone: str, method: str,
                     budget: str) -> None:
    cell = next(c for c in papers.load_cells()
                if (c["table_id"], c["row"], c["task"], c["metric"]) == (table, row, task, metric))
    assert (cell["value"], cell["backbone"], cell["method"], cell["budget"]) == (value, backbone, method, budget)


def test_diverged_flags_and_median_statistic() -> None:
    cells = {(c["table_id"], c["row"], c["task"]): c for c in papers.load_cells()}
    assert cells[("lu2021-ablation", "FPT + attention", "mnist")]["flag"] == "†"
    assert cells[("lu2021-ablation", "FPT + attention", "listops")]["flag"] is None
    assert cells[("he2022-table2", "BitFit", "sst2")]["statistic"] == "median"
    assert cells[("he2022-table6", "BitFit", "xsum")]["params_pct"] == 0.1


def test_swapped_backbone_baselines_compare_against_the_papers_backbone(tmp_path: Path) -> None:
    """LSTM and ViT-initialised runs record the backbone the baseline put in place of the task's: ‡ only where that
    differs from the paper's (tiny-lstm)."""
    from leaderboard.site import ReportedIndex, group_row

    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_record(runs, make_record("bit-xor", "lstm", seed=seed, value=50.0 + seed, backbone="lstm",
                                       init="random", max_steps=2000))
    write_record(runs, make_record("bit-xor", "vit-init", value=99.0, backbone="vit-base", max_steps=2000))
    write_record(runs, make_record("listops", "lstm", value=17.0, backbone="tiny-lstm", init="random",
                                   max_steps=2000))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ingest(runs, url)
    with Session(engine_for(url)) as s:
        groups = load_groups(s)
        reported = ReportedIndex.load(s)
    assert {(g.task, g.method, g.backbone) for g in groups} == {
        ("bit-xor", "lstm", "lstm"), ("bit-xor", "vit-init", "vit-base"), ("listops", "lstm", "tiny-lstm")}
    views = {v.table.id: v for v in tables.build_views(groups)}
    lstm = next(r for r in views["lu2021-table1"].rows if r.method == "lstm")
    xor, listops = lstm.cells[1], lstm.cells[2]  # columns: Memory, XOR, ListOps, …
    assert (xor.reproduced_backbone, xor.text()) == ("lstm", "51.50 ± 0.71 (n=2)")
    assert listops.text() == "17.00 (n=1)‡"
    assert views["lu2021-table1"].notes[0] == "‡ listops: not the paper's setup, so no Δ: backbone tiny-lstm (paper lstm)"
    assert listops.delta is None and xor.delta == pytest.approx(51.5 - xor.reported)
    vit = next(r for r in views["lu2021-modality"].rows if r.method == "vit-init")
    assert vit.cells[1].text() == "99.00 (n=1)" and not vit.cells[1].setup_differs
    lstm_xor = next(g for g in groups if g.key[:4] == ("bit-xor", "lstm", "default", "lstm"))
    row = group_row(lstm_xor, reported, [], "")
    assert (row["reported"], row["delta"], row["paper_other"]) == ("50.1", "+1.40", "—")
