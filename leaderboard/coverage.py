"""How much of each paper a grid can reproduce: reported cells, cells with a planned run, cells filled, and the
cells no planned run reaches, each with its reason. A cell is matched like the paper tables match it: by the paper
task, method and budget (a size budget also by the sizes a planned budget resolves to) and, on tables about
backbones, by the paper's backbone."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmark.config import Config
from benchmark.methods.budget import parse_budget, sizes_of, with_sizes
from leaderboard.aggregate import parse_sizes
from leaderboard.papers import load_cells


@dataclass
class Coverage:
    paper: str
    reported: int = 0
    planned: int = 0
    filled: int = 0
    unreachable: list[tuple[str, str]] = field(default_factory=list)  # (cell, why)

    def line(self) -> str:
        return (f"{self.paper}: {self.reported} reported cells, {self.planned} with a planned run, {self.filled} "
                f"filled, {len(self.unreachable)} unreachable")


def planned_points(cfg: Config) -> set[tuple[str, str, str, str, tuple[tuple[str, Any], ...]]]:
    """(paper task, backbone, method, budget name, resolved sizes) of every planned run."""
    points = set()
    for spec in cfg.specs.values():
        p = spec.paper
        kind, value = parse_budget(spec.budget)
        method = cfg.method(spec.method_name)
        resolved = {} if kind == "pct" else sizes_of(with_sizes(method, value) if kind == "sizes" else method)  # type: ignore[arg-type]
        sizes = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in resolved.items()))
        points.add((p["task"], p["backbone"], p["method"], spec.budget, sizes))
    return points


def why_unreachable(cell: dict[str, Any], points: set) -> str | None:
    """None when a planned run answers the cell; else the reason, in words."""
    if not cell["method"]:
        return "quoted by the paper from another source, not mapped to a method"
    budget = cell["budget"] or "default"
    wanted = parse_sizes(budget)
    same = [pt for pt in points if pt[0] == cell["task"] and pt[2] == cell["method"]]
    ran = [pt for pt in same if pt[3] == budget or (wanted and all(dict(pt[4]).get(k) == v
                                                                   for k, v in wanted.items()))]
    if cell["match_backbone"]:
        ran = [pt for pt in ran if pt[1] == cell["backbone"]]
    if ran:
        return None
    if not same:
        return f"no planned run of {cell['method']} on {cell['task']}"
    if cell["match_backbone"] and any(pt[3] == budget for pt in same):
        return f"{cell['method']} on {cell['task']} is not planned on {cell['backbone']}"
    return f"{cell['method']} on {cell['task']} is not planned at budget {budget}"


def coverage(cfg: Config, filled: set[tuple[str, str, str, str]] | None = None) -> list[Coverage]:
    """Per paper. `filled`: (table id, row, task, metric) of cells with a reproduced value (from the tables)."""
    points = planned_points(cfg)
    out: dict[str, Coverage] = {}
    for cell in load_cells():
        c = out.setdefault(cell["paper"], Coverage(cell["paper"]))
        c.reported += 1
        why = why_unreachable(cell, points)
        if why is None:
            c.planned += 1
        else:
            c.unreachable.append((f"{cell['table']} / {cell['row']} / {cell['task']}", why))
        if filled and (cell["table_id"], cell["row"], cell["task"], cell["metric"]) in filled:
            c.filled += 1
    return list(out.values())


def filled_cells(db_url: str, rehearsal: bool = False) -> set[tuple[str, str, str, str]]:
    """The reported cells that the database's runs fill (a reproduced value, as the paper tables show it). Real runs
    only, or with `rehearsal` the rehearsal's runs only: a rehearsal fills no real cell, and a real run no rehearsal's."""
    from sqlalchemy.orm import Session

    from leaderboard import tables
    from leaderboard.aggregate import load_groups
    from leaderboard.comparable import is_rehearsal
    from leaderboard.store import engine_for

    with Session(engine_for(db_url)) as s:
        groups = [g for g in load_groups(s) if any(is_rehearsal(r.config) for r in g.runs) == rehearsal]
        views = tables.build_views(groups)
    return {(v.table.id, r.row, c.task, c.metric) for v in views for r in v.rows for c in r.cells
            if c is not None and c.reported is not None and c.value is not None}


def summary(results: list[Coverage]) -> str:
    lines = []
    for c in results:
        lines.append(c.line())
        for why, n in Counter(w for _, w in c.unreachable).most_common():
            lines.append(f"  {n:3d} × {why}")
    return "\n".join(lines)
