"""Summarise a device-check grid: per run its status, device, precision, optimizer, time and metric, and how many
jobs really shared the GPU at once (from the records' start and finish times)."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path


def main(root: Path) -> int:
    records = [json.loads(p.read_text()) for p in sorted(root.glob("runs/**/record.json"))]
    failed = sorted(root.glob("runs/**/failed.json"))
    print(f"{len(records)} records, {len(failed)} failed.json under {root}")
    spans = []
    for r in records:
        prov, train = r["provenance"], r.get("train", {})
        metric = r.get("primary_metric")
        value = r["metrics"].get(metric)
        key = "/".join(str(r["key"][k]) for k in ("task", "method", "budget", "seed"))
        print(f"{key:32s} {r['status']:8s} {prov['device']:24s} bf16={train.get('bf16')} "
              f"optim={train.get('optimizer')} steps={train.get('steps')} wall={r['wall_time_s']:.1f}s "
              f"peak={r.get('peak_memory_mb') or 0:.0f}MB {metric}={value}")
        spans.append((datetime.fromisoformat(prov["started"]), datetime.fromisoformat(prov["finished"])))
    for f in failed:
        print(f"FAILED {f.parent}: {json.loads(f.read_text()).get('error', '')[-300:]}")
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    print(f"most jobs running at once: {peak}")
    return 0 if records and not failed else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
