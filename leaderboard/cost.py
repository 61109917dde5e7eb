"""The cost page: `petl-bench perf` records → step time, throughput and peak memory against full fine-tuning
and peft, per backbone, plus a lookup the task pages can use for cost columns.

Perf records are files (results/perf/<backbone>/<label>.json, schema `petl-bench/perf/1`), not database rows:
their ratios were computed inside one perf run and are shown as stored, never recomputed across runs.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment

SCHEMA = "petl-bench/perf/1"
MIB = 2**20
REQUIRED = ("backbone", "label", "method", "budget", "impl", "status")


def load_perf(perf_dir: Path | None) -> list[dict[str, Any]]:
    """Every perf record under `perf_dir` (unreadable files and other schemas are skipped)."""
    if perf_dir is None or not Path(perf_dir).is_dir():
        return []
    out = []
    for path in sorted(Path(perf_dir).glob("*/*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and rec.get("schema") == SCHEMA and all(k in rec for k in REQUIRED):
            out.append(rec)
    return out


def _num(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def cost_row(rec: dict[str, Any]) -> dict[str, Any]:
    """Display strings (and raw values for sorting) of one record."""
    t, m, q = rec.get("timing") or {}, rec.get("memory") or {}, rec.get("ratios") or {}
    p = rec.get("params") or {}
    peak = m.get("peak_bytes")
    return {
        "backbone": rec["backbone"], "method": rec["method"], "budget": rec["budget"], "impl": rec["impl"],
        "compare": rec.get("compare") or "", "status": rec["status"], "error": rec.get("error") or "",
        "sizes": ", ".join(f"{k}={v}" for k, v in (rec.get("sizes") or {}).items()),
        "pct": _num(p.get("trainable_pct"), ".3f"), "pct_v": p.get("trainable_pct", ""),
        "fpct": _num(p.get("formula_pct"), ".3f"), "fpct_v": p.get("formula_pct") or "",
        "step": _num(t.get("step_s"), ".3f"), "step_v": t.get("step_s", ""),
        "tps": _num(t.get("tokens_per_s"), ",.0f"), "tps_v": t.get("tokens_per_s", ""),
        "vs_full": _num(q.get("step_vs_full"), ".2f"), "vs_full_v": q.get("step_vs_full", ""),
        "vs_peft": _num(q.get("ours_vs_peft_step"), ".2f"), "vs_peft_v": q.get("ours_vs_peft_step", ""),
        "peak": _num(peak / MIB if peak else None, ",.0f"), "peak_v": peak or "",
        "mem_vs_full": _num(q.get("memory_vs_full"), ".2f"), "mem_vs_full_v": q.get("memory_vs_full", ""),
        "mfu": _num(100 * t["mfu"] if t.get("mfu") else None, ".1f"),
        "run_id": rec.get("run_id", ""),
    }


def _setup(recs: list[dict[str, Any]]) -> str:
    """One line on how a backbone's records were measured (shape, device, steps, load)."""
    r = next((x for x in recs if x["status"] == "ok"), recs[0])
    dev, sh, t = r.get("device") or {}, r.get("shape") or {}, r.get("timing") or {}
    amp = f", {dev['amp']} autocast" if dev.get("amp") else ""
    loads = [la[0] for x in recs for la in (x.get("load_avg") or [])]
    load = f"; 1-min load average {min(loads):.1f}–{max(loads):.1f}" if loads else ""
    full = next((x for x in recs if x["method"] == "full" and x["impl"] == "petl-bench"), r)
    runs = (full.get("timing") or {}).get("runs", 1)
    return (f"head {r.get('head')}, batch {sh.get('batch')} × {sh.get('seq')} tokens; {dev.get('name', '?')}, "
            f"{dev.get('threads', '?')} threads{amp}, {dev.get('optimizer', '?')}; median of {t.get('steps')} "
            f"steps after {t.get('warmup')} warm-up (full fine-tuning: {runs} worker run(s) pooled){load}; "
            f"run {r.get('run_id')}")


def _order(r: dict[str, Any]) -> tuple:
    """Full fine-tuning first, then our methods by step ratio, then the peft pairs side by side."""
    ratio = (r.get("ratios") or {}).get("step_vs_full")
    return (r["method"] != "full", bool(r.get("compare")), r.get("compare") or "", ratio is None, ratio or 0,
            r["label"])


def cost_sections(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One section per backbone, with a line on how it was measured."""
    by_backbone: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_backbone[r["backbone"]].append(r)
    return [{"backbone": b, "setup": _setup(recs), "rows": [cost_row(r) for r in sorted(recs, key=_order)]}
            for b, recs in sorted(by_backbone.items())]


def cost_index(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(method, budget, backbone) → our record's display row, for cost columns on task pages (the grid's budget
    names match the perf run's paper budgets: 'default', '0.5pct', ...)."""
    return {(r["method"], r["budget"], r["backbone"]): cost_row(r) for r in records
            if r["impl"] == "petl-bench" and not r.get("compare") and r["status"] == "ok"}


def render_cost(env: Environment, out_dir: Path, perf_dir: Path | None, common: dict[str, Any]) -> Path | None:
    """Write cost.html (and data/cost.json) when perf records exist; None otherwise."""
    records = load_perf(perf_dir)
    if not records:
        return None
    page = Path(out_dir) / "cost.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(env.get_template("cost.html.j2").render(root="", sections=cost_sections(records), **common),
                    encoding="utf-8")
    data = Path(out_dir) / "data" / "cost.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(records, indent=1, default=str), encoding="utf-8")
    return page
