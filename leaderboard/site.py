"""Database → static leaderboard: overview, a page per task, a page per run, paper tables, CSV/JSON downloads.

Everything is relative links, inline CSS/JS and inline SVG, so the folder opens from file:// with no server and
no CDN. Jinja2 autoescaping is on: method names and configs are user-supplied text.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from leaderboard import plots
from leaderboard.cost import cost_index, load_perf, render_cost
from leaderboard.aggregate import (RANK_TEST, Group, RunRow, cross_task_summary, fmt, fmt_interval, fmt_summary,
                                   load_groups, shared_ranks)
from leaderboard.comparable import display_name, is_rehearsal, setup_differences
from leaderboard.store import Reported, Run, engine_for
from leaderboard.papers import load_tables
from leaderboard.tables import PAPER_TITLES, build_views, write_tables

N_LEADERS = 3
RUN_BATCH = 500
NBSP = "\u00a0"  # keeps '97.00 ± 1.00' on one line while '(n=3)' may wrap below it
ERROR_CHARS = 200  # of a failed run's error on the overview; the run page has all of it


def slug(*parts: Any) -> str:
    """A file-name-safe, collision-free name: readable where the text allows, with a hash where it does not."""
    text = "__".join(str(p) for p in parts)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120]
    if safe != text:
        safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return safe


def run_page(task: str, method: str, budget: str, backbone: str, seed: int, variant: str = "") -> str:
    return f"runs/{slug(task, method, budget, backbone, variant, seed)}.html"


def task_page(task: str) -> str:
    return f"tasks/{slug(task)}.html"


# ---- planned grid -----------------------------------------------------------------------------------------------

def load_planned(planned: Path | Iterable[Any] | None) -> set[tuple[str, str, str, int]] | None:
    """Planned run keys from a JSON file or an iterable: each an object {task, method, budget, seed}, a
    [task, method, budget, seed] list or a 'task/method/budget/seed' string."""
    if planned is None:
        return None
    items = json.loads(Path(planned).read_text()) if isinstance(planned, (str, Path)) else list(planned)
    if isinstance(items, dict):
        items = items.get("runs", [])
    keys = set()
    for it in items:
        if isinstance(it, dict):
            t, m, b, s = it["task"], it["method"], it.get("budget", "default"), it["seed"]
        elif isinstance(it, str):
            t, m, b, s = it.strip("/").split("/")[-4:]
        else:
            t, m, b, s = it
        keys.add((str(t), str(m), str(b), int(s)))
    return keys


# ---- reported lookup --------------------------------------------------------------------------------------------

@dataclass
class ReportedIndex:
    """Reported numbers by (task, method, budget, metric), in paper-table order."""
    by_key: dict[tuple[str, str, str], list[Reported]]

    @classmethod
    def load(cls, s: Session) -> "ReportedIndex":
        idx: dict[tuple[str, str, str], list[Reported]] = defaultdict(list)
        for r in s.scalars(select(Reported).where(Reported.method.is_not(None))
                           .order_by(Reported.paper, Reported.table_id, Reported.row_order)):
            idx[(r.task, r.method or "", r.metric)].append(r)
        # the paper's own table order (main results first), not the ids' alphabetical one ("ablation" < "table1")
        order = {t.id: i for i, t in enumerate(load_tables())}
        for cells in idx.values():
            cells.sort(key=lambda c: (order.get(c.table_id, len(order)), c.row_order))
        return cls(dict(idx))

    def for_group(self, g: Group, metric: str | None) -> list[Reported]:
        """Reported numbers this group reproduces: exact budget name first, then same resolved sizes."""
        if g.override:  # a config method under a built-in's name is not the paper's method
            return []
        paper_backbone = g.paper_backbone or g.backbone
        cells = [c for c in self.by_key.get((g.paper_task or g.task, g.method, metric or ""), [])
                 if g.answers(c.budget or "default") and (not c.match_backbone or c.backbone == paper_backbone)]
        return sorted(cells, key=lambda c: (c.budget != g.budget, c.backbone != paper_backbone))


def safe_homepage(url: str | None) -> str | None:
    """A plugin's homepage only if it is an absolute http(s) URL: the text comes from a third-party package's
    metadata, and escaping alone does not stop a `javascript:` link from running when clicked."""
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _display_name(g: Group) -> str:
    """The configuration's readable label; a config method that replaces a built-in says so."""
    name = g.label or g.method
    return f"{name} [config override of the built-in]" if g.override else name


def _delta_class(d: float | None) -> str:
    return "" if d is None else ("delta-pos" if d >= 0 else "delta-neg")


@dataclass
class Comparison:
    """A group against the paper's number for its task, method and budget: a Δ only when the setups match."""
    reported: list[Reported]
    differences: list[str]  # how the group's setup differs from the first reported cell's; empty = like with like

    @property
    def rep(self) -> Reported | None:
        return self.reported[0] if self.reported else None

    @property
    def same_setup(self) -> bool:
        return self.rep is not None and not self.differences

    def delta(self, g: Group) -> float | None:
        h, rep = g.headline, self.rep
        return h.value(rep.statistic) - rep.value if (h and rep and self.same_setup) else None

    def source(self) -> str:
        return "; ".join(f"{PAPER_TITLES.get(r.paper, r.paper)} {r.table}, {r.row} ({r.backbone}): {r.value:g}"
                         + (f" ({r.statistic} of seeds)" if r.statistic != "mean" else "") for r in self.reported)


def compare(g: Group, reported: ReportedIndex) -> Comparison:
    reps = reported.for_group(g, g.primary)
    diffs = setup_differences([r.config for r in g.runs], g.backbone, reps[0].backbone) if reps else []
    return Comparison(reps, diffs)


def _num(x: float | None) -> float | str:
    return "" if x is None else x


def group_row(g: Group, reported: ReportedIndex, other_metrics: list[str], root: str,
              rank: int | None = None) -> dict[str, Any]:
    """One task-page row (display strings plus raw values for sorting and downloads)."""
    h = g.headline
    cmp = compare(g, reported)
    rep = cmp.rep
    delta = cmp.delta(g)
    if h is None and g.pre_divergence is not None:
        score, score_v = f"{fmt(g.pre_divergence.mean)}† (n={g.pre_divergence.n})", g.pre_divergence.mean
    elif h is None:
        score, score_v = ("failed" if g.n_failed else "—"), None
    else:
        score, score_v = fmt_summary(h).replace(" ± ", NBSP + "±" + NBSP), h.mean
    pct, fpct = g.trainable_pct, g.formula_pct
    statuses = [(st, n) for st in ("ok", "diverged", "failed") if (n := g.count(st))]
    others = {}
    for m in other_metrics:
        s = g.metrics.get(m)
        others[m] = (fmt_summary(s), s.mean if s else "")
    rep_text = (f"{rep.value:g}" + (rep.flag or "") + (f" ({rep.statistic})" if rep.statistic != "mean" else "")
                if rep else "—")
    first = g.first_ok_seed()
    return {
        "task": g.task, "method": _display_name(g), "budget": g.budget, "backbone": g.backbone, "source": g.source,
        "plugin": g.plugin, "homepage": safe_homepage(g.homepage),
        "rank": rank if rank is not None else "—", "rank_v": _num(rank),
        "pct": fmt(pct, 4) if pct is not None else "—", "pct_v": _num(pct),
        "fpct": fmt(fpct, 4) if fpct is not None else "—", "fpct_v": _num(fpct),
        "score": score, "score_v": _num(score_v),
        "median": fmt(h.median) if h else "—", "median_v": h.median if h else "",
        "ci": fmt_interval(h).replace(", ", "," + NBSP), "ci_v": _num(h.ci_low if h else None), "statuses": statuses,
        "others": others,
        "reported": rep_text if cmp.same_setup else "—", "reported_v": rep.value if cmp.same_setup else "",
        "paper_other": rep_text if (rep and not cmp.same_setup) else "—",
        "paper_other_v": rep.value if (rep and not cmp.same_setup) else "",
        "reported_title": cmp.source() + ("" if cmp.same_setup or not rep
                                         else ". Not comparable (no Δ): " + "; ".join(cmp.differences)),
        "differences": cmp.differences if rep else [],
        "delta": f"{delta:+.2f}" if delta is not None else "—", "delta_v": _num(delta),
        "delta_class": _delta_class(delta),
        "wall": fmt(g.wall_time_s, 1), "wall_v": _num(g.wall_time_s),
        "mem": fmt(g.peak_memory_mb, 0), "mem_v": _num(g.peak_memory_mb),
        "href": root + run_page(g.task, g.method, g.budget, g.backbone, first.seed, g.variant) if first else None,
        "seeds": [{"seed": r.seed, "status": r.status,
                   "href": root + run_page(g.task, g.method, g.budget, g.backbone, r.seed, g.variant)} for r in g.runs],
    }


def download_rows(g: Group, reported: ReportedIndex) -> dict[str, Any]:
    """The machine-readable twin of a task-page row."""
    cmp = compare(g, reported)
    rep = cmp.rep
    out: dict[str, Any] = {"task": g.task, "method": g.method, "budget": g.budget, "backbone": g.backbone,
                           "method_source": g.source, "plugin": g.plugin,
                           "method_homepage": safe_homepage(g.homepage),
                           "formula_pct": g.formula_pct, "formula": g.formula,
                           "trainable_pct": g.trainable_pct, "trainable": g.trainable, "n_ok": g.n_ok,
                           "n_diverged": g.n_diverged, "n_failed": g.n_failed, "primary_metric": g.primary}
    for name, s in sorted(g.metrics.items()):
        out.update({f"{name}_mean": s.mean, f"{name}_std": s.std, f"{name}_median": s.median, f"{name}_n": s.n,
                    f"{name}_ci_low": s.ci_low, f"{name}_ci_high": s.ci_high, f"{name}_ci_kind": s.interval})
    out.update({"pre_divergence_mean": g.pre_divergence.mean if g.pre_divergence else None,
                "reported": rep.value if rep else None, "reported_backbone": rep.backbone if rep else None,
                "reported_source": f"{rep.paper} {rep.table}: {rep.row}" if rep else None,
                "same_setup_as_paper": cmp.same_setup if rep else None,
                "setup_differences": "; ".join(cmp.differences) if rep else None,
                "delta": cmp.delta(g), "wall_time_s": g.wall_time_s, "peak_memory_mb": g.peak_memory_mb})
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# ---- plots --------------------------------------------------------------------------------------------------------

FORMULA_AXIS = "trainable parameters by the paper's formula (% of the backbone; log scale)"


def _series_by_method(points: dict[str, list[plots.Point]], colors: dict[str, int], **kw: Any) -> list[plots.Series]:
    out = []
    for name, pts in sorted(points.items()):
        color, marker = plots.style(colors.get(name, 0))
        out.append(plots.Series(name, tuple(pts), color=color, marker=marker, **kw))
    return out


def _run_href(g: Group, root: str) -> str | None:
    first = g.first_ok_seed()
    return root + run_page(g.task, g.method, g.budget, g.backbone, first.seed, g.variant) if first else None


def budget_plot(groups: list[Group], reported: ReportedIndex, root: str, colors: dict[str, int]) -> Any:
    """He et al. Figure 5: score against the paper-formula count (the one budgets are solved with), one colour
    per method; the paper's own points are hollow and link to the paper table they come from."""
    by_method: dict[str, list[plots.Point]] = defaultdict(list)
    rep_points: dict[tuple[str, str], plots.Point] = {}
    for g in groups:
        h, pct = g.headline, g.formula_pct
        if h is not None and pct is not None and pct > 0:
            label = (f"{g.method} {g.budget} ({g.backbone}): {h.mean:.2f} at {pct:.3g}% by the paper's formula "
                     f"(n={h.n}; opens seed {g.first_ok_seed().seed})")  # type: ignore[union-attr]
            by_method[g.method].append(plots.Point(pct, h.mean, label, _run_href(g, root)))
        for r in reported.for_group(g, g.primary)[:1]:
            if r.params_pct:
                rep_points[(r.method or "", r.budget or "")] = plots.Point(
                    r.params_pct, r.value, f"paper: {r.method} {r.budget}: {r.value:g} at {r.params_pct}% "
                                           f"({r.backbone}, {r.table})", f"{root}tables.html#{r.table_id}")
    series = _series_by_method(by_method, colors)
    if rep_points:
        series.append(plots.Series("paper's numbers (its own setup)", tuple(rep_points.values()), line=False,
                                   hollow=True, color="#555"))
    primary = next((g.primary for g in groups if g.primary), "score")
    return plots.scatter(series, x_label=FORMULA_AXIS, y_label=str(primary), log_x=True,
                         title="score against trainable parameters")


def pareto_plot(groups: list[Group], root: str, colors: dict[str, int]) -> Any:
    """Cost against score, one colour per method, the Pareto front dashed; each point opens a run."""
    by_method: dict[str, list[plots.Point]] = defaultdict(list)
    for g in groups:
        if g.headline is not None and g.wall_time_s and g.wall_time_s > 0:
            by_method[g.method].append(plots.Point(
                g.wall_time_s, g.headline.mean, f"{g.method} {g.budget} ({g.backbone}): {g.headline.mean:.2f} in "
                                                f"{g.wall_time_s:.1f} s (n={g.headline.n})", _run_href(g, root)))
    series = _series_by_method(by_method, colors, line=False)
    front = plots.pareto_front([p for pts in by_method.values() for p in pts])
    if front:
        series.append(plots.Series("Pareto front", tuple(front), line=True, hollow=True, color="#555",
                                   markers=False))
    primary = next((g.primary for g in groups if g.primary), "score")
    return plots.scatter(series, x_label="mean wall time per run (s, log scale)", y_label=str(primary),
                         log_x=True, title="Pareto: cost against score")


def curve_plot(curve: list[Any], primary: str | None) -> Any:
    key = f"eval_{primary}" if primary else "eval_loss"
    if not any(isinstance(h, dict) and h.get(key) is not None for h in curve):
        key = "eval_loss"
    pts = tuple(plots.Point(float(h["step"]), float(h[key]), f"step {h['step']}: {h[key]:.4g}")
                for h in curve if isinstance(h, dict) and isinstance(h.get(key), (int, float))
                and isinstance(h.get("step"), (int, float)))
    return plots.scatter([plots.Series(key, pts)], x_label="step", y_label=key, title="learning curve")


# ---- rendering ----------------------------------------------------------------------------------------------------

def environment() -> Environment:
    return Environment(loader=PackageLoader("leaderboard", "templates"),
                       autoescape=select_autoescape(["html", "j2", "xml"], default=True),
                       trim_blocks=True, lstrip_blocks=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _not_comparable(rows: list[dict[str, Any]]) -> list[str]:
    """The distinct reasons, over rows, why a paper number sits beside a result without a Δ."""
    return list(dict.fromkeys(d for r in rows for d in r["differences"]))


def _coverage(groups: list[Group], planned: set[tuple[str, str, str, int]] | None,
              tasks: list[str]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    done: dict[str, Counter[str]] = defaultdict(Counter)
    have: set[tuple[str, str, str, int]] = set()
    for g in groups:
        for r in g.runs:
            done[g.task][r.status] += 1
            have.add((g.task, g.method, g.budget, r.seed))
    missing: dict[str, list[str]] = defaultdict(list)
    for key in sorted(planned or ()):
        if key not in have:
            missing[key[0]].append("/".join(map(str, key)))
    rows = []
    for t in sorted(set(tasks) | set(missing)):
        c = done[t]
        n_missing = len(missing.get(t, [])) if planned is not None else None
        total = c["ok"] + c["diverged"] + c["failed"] + (n_missing or 0)
        widths = {k: (100 * ((n_missing or 0) if k == "missing" else c[k]) / total if total else 0)
                  for k in ("ok", "diverged", "failed", "missing")}
        rows.append({"task": t, "page": task_page(t) if t in tasks else None, "ok": c["ok"],
                     "diverged": c["diverged"], "failed": c["failed"], "missing": n_missing, "widths": widths,
                     "done_pct": 100 * (total - (n_missing or 0)) / total if total else 0})
    return rows, missing


def _what_happened(g: Group, r: RunRow, errors: dict[int, str | None]) -> str:
    """One line on why a run has no headline number: where it diverged, or the first line of its error."""
    if r.status == "diverged":
        text = "diverged" + (f" at step {r.diverged_at_step}" if r.diverged_at_step is not None else "")
        if r.pre_divergence is not None:
            text += f" (last {g.primary or 'score'} before: {fmt(r.pre_divergence)})"
        return text
    error = (errors.get(r.id) or "").strip()
    return error.splitlines()[0][:ERROR_CHARS] if error else r.status


def problem_runs(s: Session, groups: list[Group]) -> list[dict[str, Any]]:
    """Every run that did not finish (diverged or failed), by name with a link to its page: the overview has to
    say which runs to look at or rerun, not only how many there are."""
    unfinished = select(Run.id, Run.error).where(Run.status != "ok")
    errors: dict[int, str | None] = {run_id: error for run_id, error in s.execute(unfinished)}
    out = [{"status": r.status, "name": f"{g.task}/{g.method}/{g.budget}/{r.seed}", "task": g.task,
            "method": g.method, "budget": g.budget, "backbone": g.backbone, "seed": r.seed,
            "what": _what_happened(g, r, errors),
            "href": run_page(g.task, g.method, g.budget, g.backbone, r.seed, g.variant)}
           for g in groups for r in g.runs if r.status != "ok"]
    return sorted(out, key=lambda p: (p["status"] != "failed", p["task"], p["method"], p["budget"],
                                      p["backbone"], p["seed"]))


def render_site(db_url: str, out_dir: Path, planned: Path | Iterable[Any] | None = None,
                tables_dir: Path | None = None, perf_dir: Path | None = None, plots_dir: Path | None = None) -> Path:
    """Render the leaderboard into `out_dir`, the paper tables into `tables_dir` (default out_dir/../tables) and
    each task's two plots as standalone SVG files into `plots_dir` (default out_dir/../plots, for Snakemake's
    report); returns the index.html path."""
    out_dir = Path(out_dir)
    tables_dir = Path(tables_dir) if tables_dir is not None else out_dir.parent / "tables"
    plots_dir = Path(plots_dir) if plots_dir is not None else out_dir.parent / "plots"
    plots_root = os.path.relpath(out_dir, plots_dir) + "/"  # links from a standalone plot into the site
    env = environment()
    planned_keys = load_planned(planned)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    engine = engine_for(db_url)
    with Session(engine) as s:
        groups = load_groups(s)
        reported = ReportedIndex.load(s)
        n_runs = s.scalar(select(func.count()).select_from(Run)) or 0
        perf = load_perf(perf_dir)  # `petl-bench perf` records: the cost page and cost columns
        costs = cost_index(perf)
        rehearsals = sum(is_rehearsal(r.config) for g in groups for r in g.runs)
        common = {"generated": generated, "n_runs": n_runs, "has_cost": bool(perf), "rehearsals": rehearsals}
        by_task: dict[str, list[Group]] = defaultdict(list)
        for g in groups:
            by_task[g.task].append(g)
        coverage, missing = _coverage(groups, planned_keys, list(by_task))
        data_dir = out_dir / "data"

        # task pages
        colors = {m: i for i, m in enumerate(sorted({g.method for g in groups}))}
        task_cards = []
        for task, gs in sorted(by_task.items()):
            primary = next((g.primary for g in gs if g.primary), None)
            other = sorted({m for g in gs for m in g.metrics} - {primary, "loss"})
            ranks = shared_ranks({g.key: g.headline for g in gs})
            ranked = sorted(gs, key=lambda g: (g.headline is None, -(g.headline.mean if g.headline else 0),
                                               g.method, g.budget, g.backbone))
            rows = [group_row(g, reported, other, "../", ranks[g.key]) for g in ranked]
            for r in rows:
                r["cost"] = costs.get((r["method"], r["budget"], r["backbone"]))
            title = display_name(task, next((r.config for g in gs for r in g.runs if r.config), None))
            _write(out_dir / task_page(task), env.get_template("task.html.j2").render(
                root="../", task=task, title=title, slug=slug(task), primary=primary, rows=rows,
                other_metrics=other, missing=missing.get(task, []), rank_test=RANK_TEST,
                not_comparable=_not_comparable(rows),
                budget_plot=budget_plot(gs, reported, "../", colors), formula_axis=FORMULA_AXIS,
                off_axis=sorted({f"{g.method} {g.budget}" for g in gs if g.headline and not g.formula_pct}),
                pareto_plot=pareto_plot(gs, "../", colors), **common))
            _write(plots_dir / f"{slug(task)}-score-vs-params.svg", str(budget_plot(gs, reported, plots_root, colors)))
            _write(plots_dir / f"{slug(task)}-pareto.svg", str(pareto_plot(gs, plots_root, colors)))
            dl = [download_rows(g, reported) for g in ranked]
            _write(data_dir / f"{slug(task)}.csv", _csv(dl))
            _write(data_dir / f"{slug(task)}.json", json.dumps(dl, indent=1, default=str))
            leaders = [group_row(g, reported, [], "", ranks[g.key]) for g in ranked
                       if g.headline is not None][:N_LEADERS]
            task_cards.append({"name": task, "title": title, "page": task_page(task), "primary": primary,
                               "leaders": leaders, "not_comparable": _not_comparable(leaders),
                               "n_groups": len(gs), "n_runs": sum(len(g.runs) for g in gs)})
        for c in coverage:
            c["title"] = next((t["title"] for t in task_cards if t["name"] == c["task"]), c["task"])

        # run pages, streamed in batches so 10,000 runs never sit in memory at once
        run_tpl = env.get_template("run.html.j2")
        sources = {g.method: (g.source, g.plugin, safe_homepage(g.homepage)) for g in groups}
        last_id = 0
        while True:
            batch = s.scalars(select(Run).options(selectinload(Run.metrics), selectinload(Run.provenance))
                              .where(Run.id > last_id).order_by(Run.id).limit(RUN_BATCH)).all()
            if not batch:
                break
            for run in batch:
                _write(out_dir / run_page(run.task, run.method, run.budget, run.backbone, run.seed, run.variant),
                       run_tpl.render(root="../", run=run,
                                      method_origin=sources.get(run.method, (None, False, None)),
                                      task_href="../" + task_page(run.task), provenance=_provenance_json(run),
                                      environment=_environment(run),
                                      config=pretty_json(run.config),
                                      curve_plot=curve_plot(run.curve or [], run.primary_metric), **common))
            last_id = batch[-1].id
            s.expunge_all()

        # paper tables
        views = build_views(groups)
        write_tables(views, tables_dir, data_dir)
        idx = {(g.paper_task or g.task, g.method): g.task for g in groups}  # paper cell → the instance that ran it
        table_ctx = []
        for v in views:
            rows = []
            for r in v.rows:
                task = next((idx[(c.task, r.method)] for c in r.cells
                             if c is not None and c.reproduced_backbone and (c.task, r.method) in idx), None)
                rows.append({"row": r.row, "method": r.method, "budget": r.budget, "params": r.params_text(),
                             "params_note": r.params_note and f"printed {r.params}; {r.params_note}",
                             "href": task_page(task) if task else None,
                             "cells": [_cell_ctx(c) for c in r.cells]})
            table_ctx.append({"id": v.table.id, "table": v.table.table, "title": v.table.title,
                              "paper_title": PAPER_TITLES.get(v.table.paper, v.table.paper),
                              "citation": v.table.citation, "columns": v.table.columns, "rows": rows,
                              "notes": v.notes, "empty": v.empty, "why_empty": _why_empty(v, set(by_task))})
        _write(out_dir / "tables.html", env.get_template("tables.html.j2").render(root="", tables=table_ctx,
                                                                                  **common))
        render_cost(env, out_dir, perf_dir, common)
        index = out_dir / "index.html"
        _write(index, env.get_template("index.html.j2").render(root="", tasks=task_cards, coverage=coverage,
                                                               summary=cross_task_summary(groups),
                                                               rank_test=RANK_TEST,
                                                               problems=problem_runs(s, groups),
                                                               planned=planned_keys is not None, **common))
    engine.dispose()
    return index


def pretty_json(obj: Any, levels: int = 2, indent: str = "") -> str:
    """JSON indented for the first `levels` levels and compact below: readable, and fast, since json's C
    encoder only runs when indent is None (10,000 run pages spend most of their time here otherwise)."""
    if levels == 0 or not isinstance(obj, dict) or not obj:
        return json.dumps(obj, sort_keys=True, default=str)
    inner = indent + "  "
    items = (f"{inner}{json.dumps(str(k))}: {pretty_json(v, levels - 1, inner)}" for k, v in sorted(obj.items()))
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def _provenance_json(run: Run) -> str:
    prov = run.provenance
    if prov is None:
        return "{}"
    known = {k: getattr(prov, k) for k in ("git_commit", "git_dirty", "device", "host", "started", "finished",
                                           "python", "torch", "cuda", "packages")}
    return pretty_json(known | (prov.extra or {}))


def _environment(run: Run) -> str:
    """The run's environment in one line (lock digest, whether the installed set matched it, torch), so two runs'
    environments compare at a glance."""
    from benchmark.environment import short

    prov = run.provenance
    lock = (prov.extra or {}).get("lock") if prov is not None else None
    if not isinstance(lock, dict):
        return "not recorded (a record from before lock files)"
    torch = f"; torch {prov.torch}" + (f" (CUDA {prov.cuda})" if prov.cuda else "") if prov.torch else ""
    return short(lock) + torch


def _why_empty(v: Any, tasks_run: set[str]) -> str:
    """A word on why a paper table has no reproduced cell: its tasks never ran, only other backbones ran (a table
    about backbones), or not its methods/budgets."""
    tasks = list(dict.fromkeys(c.task for c in v.table.columns))
    absent = [t for t in tasks if t not in tasks_run]
    reasons = []
    if absent:
        reasons.append(f"no run of {', '.join(absent)} has been ingested (the paper grid, config/config.yaml, "
                       f"has {'it' if len(absent) == 1 else 'them'})")
    if v.table.match_backbone and len(absent) < len(tasks):
        reasons.append("this table compares backbones, so only runs on the backbones it names count")
    return "; ".join(reasons) or "its tasks ran, but none of its rows' methods at its budgets"


def _cell_ctx(c: Any) -> dict[str, Any]:
    if c is None:
        return {"reproduced": "", "reported": "", "delta": "", "delta_class": "", "missing": False, "title": ""}
    title = f"{c.task} {c.metric}; paper backbone {c.backbone}"
    if c.reproduced_backbone:
        title += f"; reproduced on {c.reproduced_backbone}"
    if c.setup_differs:
        title += "; not the paper's setup, so no Δ: " + "; ".join(c.differences)
    return {"reproduced": c.text(), "reported": c.reported_text(), "delta": c.delta_text(),
            "delta_class": _delta_class(c.delta), "missing": c.missing, "setup_differs": c.setup_differs,
            "title": title}
