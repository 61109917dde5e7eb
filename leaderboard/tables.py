"""Paper-style tables: for each table of both papers, the reproduced value ± spread beside the reported one and Δ.

One model (`TableView`) feeds every output — Markdown, LaTeX (booktabs), CSV, JSON and the HTML page — so they
can never disagree. A cell is `missing` when no run finished; † marks divergence; ‡ marks a reproduction whose
setup differs from the paper's (backbone, task options or training length; see leaderboard.comparable): such a
cell gets no Δ, since the difference would compare unlike things.
"""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.aggregate import Group, Summary, fmt
from leaderboard.comparable import setup_differences
from leaderboard.papers import PaperTable, load_tables

PAPER_TITLES = {"he2022": "He et al. 2022", "lu2021": "Lu et al. 2021 (FPT)"}
MISSING = "missing"


@dataclass
class Cell:
    task: str
    metric: str
    label: str
    reported: float | None  # None: a row the paper did not print (`not_in_paper`), run as its own labelled row
    reported_flag: str | None
    backbone: str  # the paper's
    statistic: str
    reproduced: Summary | None = None
    reproduced_backbone: str | None = None
    pre_divergence: float | None = None
    n_diverged: int = 0
    n_failed: int = 0
    differences: list[str] = field(default_factory=list)  # from the paper's setup; non-empty: no Δ

    @property
    def value(self) -> float | None:
        if self.reproduced is not None:
            return self.reproduced.value(self.statistic)
        return self.pre_divergence

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def setup_differs(self) -> bool:
        return self.reproduced_backbone is not None and bool(self.differences)

    @property
    def delta(self) -> float | None:
        """Reproduced − reported, only like with like."""
        if self.value is None or self.setup_differs or self.reported is None:
            return None
        return self.value - self.reported

    def text(self, pm: str = "±", dag: str = "†", ddag: str = "‡") -> str:
        """'98.40 ± 0.50 (n=5)‡', '61.2† (diverged)', '3 failed' or 'missing'."""
        if self.reproduced is not None:
            s = self.reproduced
            spread = f" {pm} {s.std:.2f}" if s.std is not None else ""
            out = f"{fmt(s.value(self.statistic))}{spread} (n={s.n})"
            if self.n_diverged:
                out += f" +{self.n_diverged}{dag}"
        elif self.pre_divergence is not None:
            out = f"{fmt(self.pre_divergence)}{dag} (n={self.n_diverged})"
        elif self.n_failed:
            return f"{self.n_failed} failed"
        else:
            return MISSING
        if self.n_failed:
            out += f" +{self.n_failed} failed"
        return out + (ddag if self.setup_differs else "")

    def reported_text(self, dag: str = "†") -> str:
        if self.reported is None:
            return "—"
        return f"{self.reported:g}" + (dag if self.reported_flag else "")

    def delta_text(self) -> str:
        d = self.delta
        return "" if d is None else f"{d:+.2f}"


@dataclass
class RowView:
    row: str
    method: str | None
    budget: str | None
    params: str | None
    note: str | None
    cells: list[Cell | None] = field(default_factory=list)  # None where the paper printed no number
    formula_pct: float | None = None  # the paper formula's share, where it disagrees with the printed one
    params_note: str | None = None  # how they disagree

    def params_text(self) -> str:
        """The printed share, and the formula's beside it where they disagree (never one silently picked)."""
        if self.formula_pct is None:
            return self.params or ""
        return f"{self.params or ''} ⚠ formula {self.formula_pct:g}%"


@dataclass
class TableView:
    table: PaperTable
    rows: list[RowView]

    @property
    def empty(self) -> bool:
        """No cell has a run behind it (finished or not)."""
        return all(c is None or c.reproduced_backbone is None for r in self.rows for c in r.cells)

    @property
    def notes(self) -> list[str]:
        """Footnotes: how setups differ from the paper's (hence no Δ), and row notes from the data file."""
        out = []
        reasons = list(dict.fromkeys((c.task, "; ".join(c.differences)) for r in self.rows for c in r.cells
                                     if c is not None and c.setup_differs))
        for task, reason in reasons:
            out.append(f"‡ {task}: not the paper's setup, so no Δ: {reason}")
        for r in self.rows:
            if r.formula_pct is not None:
                out.append(f"⚠ {r.row}: printed {r.params}, the paper's formula gives {r.formula_pct:g}%: "
                           f"{r.params_note}")
            if r.note:
                out.append(f"{r.row}: {r.note}")
        return out


def index_groups(groups: list[Group]) -> dict[tuple[str, str], list[Group]]:
    """Groups by the paper cell they answer: the run's explicit paper task and method (an instance's name plays no
    part). A config method that overrides a built-in's name answers no paper cell."""
    idx: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for g in groups:
        if not g.override:
            idx[(g.paper_task or g.task, g.method)].append(g)
    return idx


def pick_group(candidates: list[Group], budget: str, backbone: str, match_backbone: bool) -> Group | None:
    """The group that reproduces a reported cell: one that ran `budget` (by name or by resolved sizes), on the
    paper's backbone if run, else (unless the table is about backbones) the one with the most runs."""
    ran = [g for g in candidates if g.answers(budget)]
    ran.sort(key=lambda g: (g.budget != budget, (g.paper_backbone or g.backbone) != backbone,
                            g.label not in ("", g.method), -len(g.runs), g.backbone, g.variant))
    if match_backbone:
        ran = [g for g in ran if (g.paper_backbone or g.backbone) == backbone]
    return ran[0] if ran else None


def fill_cell(cell: Cell, g: Group | None) -> Cell:
    if g is None:
        return cell
    cell.reproduced_backbone = g.backbone
    cell.differences = setup_differences([r.config for r in g.runs], g.backbone, cell.backbone)
    cell.reproduced = g.metrics.get(cell.metric)
    cell.n_diverged, cell.n_failed = g.n_diverged, g.n_failed
    if cell.reproduced is None and cell.metric == g.primary and g.pre_divergence is not None:
        cell.pre_divergence = g.pre_divergence.mean
    return cell


def build_views(groups: list[Group], tables: tuple[PaperTable, ...] | None = None) -> list[TableView]:
    idx = index_groups(groups)
    views = []
    for t in tables if tables is not None else load_tables():
        rows = []
        for r in t.rows:
            rv = RowView(row=r["row"], method=r.get("method"),
                         budget=str(r["budget"]) if r.get("budget") is not None else None,
                         params=r.get("params"), note=r.get("note"), formula_pct=r.get("formula_pct"),
                         params_note=r.get("params_note"))
            flags = r.get("flags") or [None] * len(t.columns)
            match = bool(r.get("match_backbone", t.match_backbone))
            for col, value, flag, bb in zip(t.columns, r["values"], flags, r["backbone_per_column"]):
                if value is None and not r.get("not_in_paper"):
                    rv.cells.append(None)
                    continue
                reported = None if value is None else float(value)
                cell = Cell(col.task, col.metric, col.label, reported, flag, bb, t.statistic)
                if rv.method:
                    g = pick_group(idx.get((col.task, rv.method), []), rv.budget or "default", bb, match)
                    fill_cell(cell, g)
                rv.cells.append(cell)
            rows.append(rv)
        views.append(TableView(t, rows))
    return views


# ---- outputs -------------------------------------------------------------------------------------------------

def to_markdown(v: TableView) -> str:
    t = v.table
    head = ["Row", "Method / budget", "Params"]
    for c in t.columns:
        head += [f"{c.label} reproduced", f"{c.label} reported", f"{c.label} Δ"]
    lines = [f"### {PAPER_TITLES.get(t.paper, t.paper)} — {t.table}: {t.title}", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for r in v.rows:
        cells = [_md(r.row), _md(f"{r.method} / {r.budget}" if r.method else "not mapped"), _md(r.params_text())]
        for c in r.cells:
            cells += ["", "", ""] if c is None else [c.text(), c.reported_text(), c.delta_text()]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    stat = "median" if t.statistic == "median" else "mean"
    lines.append(f"Reproduced: {stat} ± sample std over finished seeds (n); Δ = reproduced − reported, only "
                 f"where the setup is the paper's; {MISSING} = no finished run; † diverged; ‡ other setup.")
    lines += [f"{n}" for n in v.notes]
    lines += ["", f"Source: {t.citation}.", ""]
    return "\n".join(x if x else "" for x in lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "†": r"\dag{}",
        "‡": r"\ddag{}", "Δ": r"$\Delta$", "—": "---", "−": "-"}


def tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def to_latex(v: TableView) -> str:
    t = v.table
    n = len(t.columns)
    out = [f"% {PAPER_TITLES.get(t.paper, t.paper)} — {t.table}: {t.title}", "% generated by petl-bench; needs \\usepackage{booktabs}",
           r"\begin{table}[t]", r"\centering", r"\small",
           r"\begin{tabular}{ll" + "l" + "rrr" * n + "}", r"\toprule"]
    out.append(" & & & " + " & ".join(f"\\multicolumn{{3}}{{c}}{{{tex(c.label)}}}" for c in t.columns) + r" \\")
    out.append("".join(f"\\cmidrule(lr){{{4 + 3 * i}-{6 + 3 * i}}}" for i in range(n)))
    out.append("Row & Method / budget & Params & " + " & ".join(["Repr.", "Rep.", r"$\Delta$"] * n) + r" \\")
    out.append(r"\midrule")
    for r in v.rows:
        cells = [tex(r.row), tex(f"{r.method} / {r.budget}" if r.method else "not mapped"), tex(r.params_text())]
        for c in r.cells:
            cells += ["", "", ""] if c is None else [tex(c.text()), tex(c.reported_text()), tex(c.delta_text())]
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = "; ".join(v.notes)
    stat = "median" if t.statistic == "median" else "mean"
    caption = (f"{t.title}. Reproduced: {stat} $\\pm$ sample std over finished seeds (n); Rep.: reported; "
               f"$\\Delta$ = reproduced $-$ reported, only where the setup is the paper's; {MISSING}: no finished run; "
               f"\\dag{{}} diverged; \\ddag{{}} other setup."
               + (f" {tex(notes)}." if notes else "") + f" Source: {tex(t.citation)}.")
    out += [f"\\caption{{{caption}}}", f"\\label{{tab:{t.id}}}", r"\end{table}", ""]
    return "\n".join(out)


def records(v: TableView) -> list[dict[str, Any]]:
    """Flat rows, one per reported number, for CSV and JSON downloads."""
    out = []
    for r in v.rows:
        for c in r.cells:
            if c is None:
                continue
            s = c.reproduced
            out.append({"paper": v.table.paper, "table": v.table.table, "row": r.row, "method": r.method,
                        "budget": r.budget, "params": r.params, "params_formula_pct": r.formula_pct,
                        "params_mismatch": r.formula_pct is not None,
                        "task": c.task, "metric": c.metric, "statistic": c.statistic,
                        "reported": c.reported, "reported_flag": c.reported_flag, "paper_backbone": c.backbone,
                        "reproduced_backbone": c.reproduced_backbone, "reproduced": c.value,
                        "mean": s.mean if s else None, "median": s.median if s else None,
                        "std": s.std if s else None, "n": s.n if s else 0,
                        "ci_low": s.ci_low if s else None, "ci_high": s.ci_high if s else None,
                        "n_diverged": c.n_diverged, "n_failed": c.n_failed, "delta": c.delta,
                        "same_setup_as_paper": None if c.reproduced_backbone is None else not c.differences,
                        "setup_differences": "; ".join(c.differences) or None,
                        "citation": v.table.citation})
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def write_tables(views: list[TableView], tables_dir: Path, data_dir: Path | None = None) -> list[Path]:
    """results/tables/<id>.md|.tex, plus (for the site) <id>.md|.tex|.csv|.json in `data_dir`."""
    tables_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for v in views:
        md, latex, rows = to_markdown(v), to_latex(v), records(v)
        outputs = {".md": md, ".tex": latex}
        for ext, text in outputs.items():
            p = tables_dir / f"{v.table.id}{ext}"
            p.write_text(text)
            written.append(p)
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            for ext, text in {**outputs, ".csv": to_csv(rows), ".json": json.dumps(rows, indent=1)}.items():
                (data_dir / f"{v.table.id}{ext}").write_text(text)
    return written
