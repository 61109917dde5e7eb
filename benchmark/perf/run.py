"""A perf run: every case in a fresh worker process, then the ratios between them, then one record per case.

Ratios are only meaningful between cases measured in the same run (same machine, same load,
same software), so they are computed here, once, and stored in each record with the run's
id; the leaderboard shows them and never divides numbers from different runs.
With `rounds > 1` the cases are measured round-robin and each case's step times are pooled,
so a change in machine load during the run touches every configuration alike.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from benchmark.perf.cases import Case, family_of
from benchmark.perf.measure import RESULT

SCHEMA = "petl-bench/perf/1"  # one record per case: results/perf/<backbone>/<label>.json
RUN_SCHEMA = "petl-bench/perf-run/1"  # one index per run: results/perf/runs/<run_id>.json
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# dense bf16 tensor-core peaks (FLOP/s) for model FLOPs utilisation; CPUs get none
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}


def run_case(case: Case, log: Path, timeout_s: float) -> dict[str, Any]:
    """Measure `case` in a fresh interpreter; on CPU a second one measures its live peak memory."""
    result = _worker(case, log, timeout_s)
    if result["status"] != "ok" or result["device"]["type"] != "cpu":
        return result
    memory = _worker(dataclasses.replace(case, phase="memory"), log, timeout_s)
    if memory["status"] != "ok":
        return {**result, "memory": {**result["memory"], "sampled_error": memory.get("error")}}
    return {**result, "memory": {**memory["memory"], "hwm_bytes": result["memory"]["peak_bytes"]}}


def _worker(case: Case, log: Path, timeout_s: float) -> dict[str, Any]:
    """One worker process; its stderr goes to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "benchmark.perf.measure", json.dumps(case.to_dict())]
    load_before = os.getloadavg()
    with log.open("a") as err:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout_s,
                                  env={**os.environ, **OFFLINE})
        except subprocess.TimeoutExpired:
            return {"status": "failed", "error": f"timed out after {timeout_s:g} s", "load_avg": [load_before]}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
    if not lines:
        return {"status": "failed", "error": f"worker exited with code {proc.returncode} and no result; see {log}",
                "load_avg": [load_before]}
    return {**json.loads(lines[-1][len(RESULT):]), "load_avg": [load_before, os.getloadavg()]}


def merge_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs of the same case: step times pooled (median over all), peaks maxed."""
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return results[-1]
    out = dict(ok[-1])
    times = [t for r in ok for t in r["step_times_s"]]
    out["step_times_s"] = times
    out["step_s"] = statistics.median(times)
    out["tokens_per_s"] = out["tokens_per_step"] / out["step_s"]
    out["flops_per_s"] = out["flops_per_step"] / out["step_s"] if out.get("flops_per_step") else None
    out["memory"] = {**out["memory"], "peak_bytes": max(r["memory"]["peak_bytes"] for r in ok)}
    out["load_avg"] = [la for r in results for la in r.get("load_avg", [])]
    out["runs"] = len(ok)  # worker runs pooled: rounds, and full fine-tuning's bracketing repeat
    return out


def _mfu(result: dict[str, Any]) -> float | None:
    name = (result.get("device") or {}).get("name", "")
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return result["flops_per_s"] / peak if peak and result.get("flops_per_s") else None


def record(case: Case, result: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The perf record of one case (ratios filled in later by `add_ratios`)."""
    ok = result["status"] == "ok"
    return {
        "schema": SCHEMA, "run_id": run["run_id"], "label": case.label, "backbone": case.backbone,
        "family": family_of(case.backbone), "head": result.get("head"), "method": case.method,
        "budget": case.budget, "impl": case.impl, "compare": case.compare, "options": case.options,
        "status": result["status"], "error": result.get("error"),
        "sizes": result.get("sizes"), "mods": result.get("mods"), "params": result.get("params"),
        "shape": {"batch": case.batch, "seq": case.seq, "tokens_per_step": result.get("tokens_per_step")},
        "timing": {"steps": case.steps, "warmup": case.warmup, "runs": result.get("runs", 1),
                   "step_times_s": result.get("step_times_s"), "step_s": result.get("step_s"),
                   "tokens_per_s": result.get("tokens_per_s"), "flops_per_step": result.get("flops_per_step"),
                   "flops_per_s": result.get("flops_per_s"), "mfu": _mfu(result) if ok else None},
        "memory": result.get("memory"), "device": result.get("device"),
        "peft": {k: result[k] for k in ("peft_version", "peft_config") if k in result} or None,
        "ratios": {}, "load_avg": result.get("load_avg"), "provenance": run["provenance"],
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def add_ratios(records: list[dict[str, Any]]) -> None:
    """Fill each record's ratios: to full fine-tuning on its backbone (full = 1.0), and, for a peft pair, ours ÷
    peft's step time (stored on both sides of the pair)."""
    ok = [r for r in records if r["status"] == "ok"]
    full = {r["backbone"]: r for r in ok if r["method"] == "full" and r["impl"] == "petl-bench"}
    pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in ok:
        if r["compare"]:
            pairs[(r["backbone"], r["compare"])][r["impl"]] = r
    for r in records:
        ref = full.get(r["backbone"])
        if r["status"] != "ok" or ref is None:
            continue
        r["ratios"] = {"step_vs_full": _ratio(r["timing"]["step_s"], ref["timing"]["step_s"]),
                       "tokens_per_s_vs_full": _ratio(r["timing"]["tokens_per_s"], ref["timing"]["tokens_per_s"]),
                       "memory_vs_full": _ratio(r["memory"]["peak_bytes"], ref["memory"]["peak_bytes"]),
                       "reference": ref["label"]}
    for (backbone, compare), sides in pairs.items():
        ours, theirs = sides.get("petl-bench"), sides.get("peft")
        if ours is None or theirs is None:
            continue
        ratio = _ratio(ours["timing"]["step_s"], theirs["timing"]["step_s"])
        mem = _ratio(ours["memory"]["peak_bytes"], theirs["memory"]["peak_bytes"])
        for side, other in ((ours, theirs), (theirs, ours)):
            side["ratios"].update(ours_vs_peft_step=ratio, ours_vs_peft_memory=mem, peft_pair=other["label"])


def write_json(path: Path, obj: Any) -> Path:
    """Atomic write (temp file in the same folder, then rename): readers see a whole file or the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".perf-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def record_path(out: Path, rec: dict[str, Any]) -> Path:
    return out / rec["backbone"] / f"{rec['label']}.json"


Runner = Callable[[Case, Path, float], dict[str, Any]]


def _say(line: str) -> None:
    print(line, flush=True)  # a long run's progress must show while it runs, also into a file


def run_perf(cases: list[Case], out: Path, *, rounds: int = 1, timeout_s: float = 3600,
             progress: Callable[[str], None] = _say, runner: Runner = run_case) -> list[dict[str, Any]]:
    """Measure every case (round-robin over `rounds`), add ratios, write one record per case; return them.
    `runner` measures one case (default: in a fresh worker process; tests may measure in-process)."""
    from benchmark.record import now, provenance

    started = now()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    unique: dict[tuple[str, str], Case] = {}
    for rnd in range(rounds):
        for case in cases:
            log = out / case.backbone / f"{case.label}.log"
            res = runner(case, log, timeout_s)
            results[(case.backbone, case.label)].append(res)  # a repeated case (bracketing) pools its steps
            unique.setdefault((case.backbone, case.label), case)
            progress(_progress_line(case, res, rnd, rounds))
    run = {"run_id": run_id, "provenance": provenance(0, started)}
    records = [record(c, merge_rounds(results[key]), run) for key, c in unique.items()]
    add_ratios(records)
    for rec in records:
        write_json(record_path(out, rec), rec)
    write_json(out / "runs" / f"{run_id}.json", {"schema": RUN_SCHEMA, "run_id": run_id, "argv": sys.argv,
                                                  "records": [str(record_path(out, r).relative_to(out))
                                                              for r in records]})
    (out / "table.md").write_text(format_table(records) + "\n")
    return records


def _progress_line(case: Case, res: dict[str, Any], rnd: int, rounds: int) -> str:
    where = f"[{rnd + 1}/{rounds}] " if rounds > 1 else ""
    if res["status"] != "ok":
        return f"{where}{case.backbone:18s} {case.label:32s} {status_text(res)}"
    mb = res["memory"]["peak_bytes"] / 2**20
    return (f"{where}{case.backbone:18s} {case.label:32s} step {res['step_s']:.3f} s  "
            f"{res['tokens_per_s']:,.0f} tok/s  peak {mb:,.0f} MiB  load {res['load_avg'][0][0]:.2f}")


def status_text(rec: dict[str, Any]) -> str:
    """'unavailable (peft is not installed ...)' for a reference row; 'failed: ValueError ...' for ours."""
    if rec["status"] == "unavailable":
        return f"unavailable ({rec.get('error')})"
    return f"{rec['status']}: {rec.get('error')}"


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def format_table(records: list[dict[str, Any]]) -> str:
    """The ratio table (Markdown): step time and peak memory against full fine-tuning, and ours ÷ peft."""
    head = ("| backbone | method | budget | impl | trainable % | step (s) | tokens/s | step ÷ full | ours ÷ peft "
            "| peak mem (MiB) | mem ÷ full |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in records:
        t, m, q, p = r["timing"], r["memory"] or {}, r["ratios"], r["params"] or {}
        if r["status"] != "ok":
            lines.append(f"| {r['backbone']} | {r['method']} | {r['budget']} | {r['impl']} | {status_text(r)} "
                         "|||||||")
            continue
        lines.append(f"| {r['backbone']} | {r['method']} | {r['budget']} | {r['impl']} "
                     f"| {_fmt(p.get('trainable_pct'), '.3f')} | {t['step_s']:.3f} | {t['tokens_per_s']:,.0f} "
                     f"| {_fmt(q.get('step_vs_full'), '.2f')} | {_fmt(q.get('ours_vs_peft_step'), '.2f')} "
                     f"| {m['peak_bytes'] / 2**20:,.0f} | {_fmt(q.get('memory_vs_full'), '.2f')} |")
    return "\n".join(lines)
