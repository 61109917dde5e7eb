"""Scale benchmark (not a unit test): 10,000 synthetic records → ingest → render, timed; then, when Chromium is
installed, time sorting and filtering the largest task page in a real browser.

    python -m leaderboard.scale [--n 10000] [--tasks 5] [--work /tmp/petl-scale]
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from leaderboard.ingest import ingest
from leaderboard.site import render_site
from leaderboard.synthetic import write_grid

CHROMIUM = Path("/usr/bin/chromium")


def browser_timings(page_path: Path) -> dict[str, Any]:
    """Load a task page in headless Chromium and time a header-click sort and a filter keystroke."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="load")
        load_s = time.perf_counter() - t0
        rows = page.locator("#runs-table tbody tr").count()
        sort_ms = page.evaluate("""() => {
            const th = document.querySelectorAll('#runs-table thead th')[4];
            const t0 = performance.now(); th.click(); const t1 = performance.now(); th.click();
            return [t1 - t0, performance.now() - t1];
        }""")
        filter_ms = page.evaluate("""() => {
            const i = document.querySelector('input[data-filter]');
            const t0 = performance.now(); i.value = 'method-1 r16'; i.dispatchEvent(new Event('input'));
            return performance.now() - t0;
        }""")
        shown = page.locator("#runs-table tbody tr:not([hidden])").count()
        browser.close()
    return {"rows": rows, "load_s": round(load_s, 2), "sort_ms": [round(x, 1) for x in sort_ms],
            "filter_ms": round(filter_ms, 1), "rows_after_filter": shown}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=1, help="seeds per configuration (1 → one table row per run)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/petl-scale"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    runs, db, site = args.work / "runs", args.work / "bench.sqlite", args.work / "leaderboard"
    clock = [(time.perf_counter(), time.process_time())]
    write_grid(runs, args.n, tasks=args.tasks, seeds=args.seeds)
    clock.append((time.perf_counter(), time.process_time()))
    n = ingest(runs, f"sqlite:///{db}")
    clock.append((time.perf_counter(), time.process_time()))
    ingest(runs, f"sqlite:///{db}")
    clock.append((time.perf_counter(), time.process_time()))
    index = render_site(f"sqlite:///{db}", site)
    clock.append((time.perf_counter(), time.process_time()))
    wall = [round(b[0] - a[0], 1) for a, b in zip(clock, clock[1:])]
    cpu = [round(b[1] - a[1], 1) for a, b in zip(clock, clock[1:])]
    out: dict[str, Any] = {"records": n, "phases": ["generate", "ingest", "re-ingest", "render"],
                           "wall_s": wall, "cpu_s": cpu, "ingest_plus_render_wall_s": round(wall[1] + wall[3], 1),
                           "ingest_plus_render_cpu_s": round(cpu[1] + cpu[3], 1),
                           "html_files": sum(1 for _ in site.rglob("*.html")), "db_mb": round(db.stat().st_size / 1e6, 1)}
    pages = sorted((site / "tasks").glob("*.html"), key=lambda p: p.stat().st_size)
    if CHROMIUM.exists() and pages:
        out["browser"] = browser_timings(pages[-1])
    print(json.dumps(out, indent=1))
    print("index:", index)


if __name__ == "__main__":
    main()
