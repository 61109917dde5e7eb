"""The papers' reported numbers, kept as data (leaderboard/reported/*.yaml) and flattened into one cell per number.

The files are written table by table (columns once, a row of values each) because that is how a reader checks
them against the paper; everything downstream sees flat cells with paper, table, row, task, metric, backbone,
value and citation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPORTED_DIR = Path(__file__).parent / "reported"


@dataclass(frozen=True)
class Column:
    task: str
    metric: str
    label: str


@dataclass(frozen=True)
class PaperTable:
    """One table of one paper: its columns and rows, in the paper's order."""
    id: str
    paper: str
    table: str
    title: str
    citation: str
    statistic: str
    lower_is_better: bool
    match_backbone: bool
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...] = field(repr=False)


def _pct(text: Any) -> float | None:
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$", str(text or ""))
    return float(m.group(1)) if m else None


def _check_table(path: Path, t: dict[str, Any]) -> None:
    for k in ("id", "table", "title", "columns", "rows"):
        if k not in t:
            raise ValueError(f"{path}: table {t.get('id', '?')} lacks {k!r}")
    for r in t["rows"]:
        if r.get("not_in_paper") and any(v is not None for v in r.get("values", [])):
            raise ValueError(f"{path}: {t['id']} row {r.get('row')!r} is `not_in_paper` but has reported values")
        if len(r.get("values", [])) != len(t["columns"]):
            raise ValueError(f"{path}: {t['id']} row {r.get('row')!r} has {len(r.get('values', []))} values "
                             f"for {len(t['columns'])} columns")


@lru_cache(maxsize=4)
def load_tables(directory: Path = REPORTED_DIR) -> tuple[PaperTable, ...]:
    """Every paper table in `directory`, papers in file-name order, tables in file order."""
    tables = []
    for path in sorted(Path(directory).glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        defaults = doc.get("defaults", {})
        for t in doc["tables"]:
            _check_table(path, t)
            cols = tuple(Column(c["task"], c["metric"], c.get("label", f"{c['task']} {c['metric']}"))
                         for c in t["columns"])
            rows = []
            for r in t["rows"]:
                backbones = [(r.get("backbones") or {}).get(c.task) or r.get("backbone")
                             or (defaults.get("backbones") or {}).get(c.task) or defaults.get("backbone")
                             for c in cols]
                if None in backbones:
                    raise ValueError(f"{path}: {t['id']} row {r['row']!r}: no backbone for every column")
                rows.append({**r, "backbone_per_column": backbones})
            tables.append(PaperTable(id=t["id"], paper=doc["paper"], table=t["table"], title=t["title"],
                                     citation=doc["citation"], statistic=t.get("statistic", "mean"),
                                     lower_is_better=bool(t.get("lower_is_better", False)),
                                     match_backbone=bool(t.get("match_backbone", False)),
                                     columns=cols, rows=tuple(rows)))
    return tuple(tables)


def load_cells(directory: Path = REPORTED_DIR) -> list[dict[str, Any]]:
    """One dict per reported number, in the columns of the `reported` database table."""
    cells = []
    for t in load_tables(directory):
        for order, r in enumerate(t.rows):
            flags = r.get("flags") or [None] * len(t.columns)
            for col, value, flag, backbone in zip(t.columns, r["values"], flags, r["backbone_per_column"]):
                if value is None:
                    continue
                cells.append({
                    "paper": t.paper, "table_id": t.id, "table": t.table, "row": r["row"], "row_order": order,
                    "method": r.get("method"), "budget": str(r["budget"]) if r.get("budget") is not None else None,
                    "task": col.task, "metric": col.metric, "backbone": backbone,
                    "match_backbone": bool(r.get("match_backbone", t.match_backbone)),
                    "statistic": t.statistic, "value": float(value), "params": r.get("params"),
                    "params_pct": r.get("params_pct", _pct(r.get("params"))), "flag": flag,
                    "note": r.get("note"), "citation": t.citation,
                })
    return cells
