"""The Snakefile plans the grid each config file describes, and the smoke grid runs end to end."""
from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmark.config import load_config
from conftest import REPO, snakemake


def dry_run(*args: str) -> str:
    cmd = [snakemake(), "-n", "--cores", "2", "--nolock", *args]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def job_counts(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", text, re.M)}


def planned_runs(config: Path) -> int:
    """Grid size computed independently of benchmark.config: the union of each block's product, where a block's
    training overrides are part of a run (two blocks with different settings are two runs)."""
    cfg = yaml.safe_load(config.read_text())
    runs = set()
    for b in cfg["grid"]:
        for t in b["tasks"]:
            for m in b["methods"]:
                for bud in b.get("budgets", ["default"]):
                    for s in b.get("seeds", [1]):
                        runs.add((t, m, bud, s, tuple(sorted((b.get("train") or {}).items()))))
    return len(runs) - len(load_config(config).aliases)  # a run named under two budgets is planned once


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_each_config_dry_runs_its_grid(name: str, tmp_path: Path) -> None:
    args = ["--configfile", f"config/{name}", "--config", f"results={tmp_path}/results",
            f"resources={tmp_path}/resources"]
    if name != "config.yaml":
        args.append(f"data_dir={REPO.parent / 'shared' / 'data'}")
    counts = job_counts(dry_run(*args))
    assert counts["train"] == planned_runs(REPO / "config" / name)
    assert counts["ingest"] == counts["report"] == counts["plan"] == counts["all"] == 1


def test_plain_snakemake_is_the_paper_grid(tmp_path: Path) -> None:
    counts = job_counts(dry_run("--config", f"results={tmp_path}/results"))
    # 579 grid points, 12 of them aliases planned once; the stray `lora` block on bit-xor (3 runs) is gone; Figure 5 adds sa-ffn r30 (6 runs)
    assert counts["train"] == planned_runs(REPO / "config" / "config.yaml") == 579 - 12 - 3 + 6


def test_bad_config_stops_before_planning(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  - tasks: [bit-xor]\n    methods: [fpt]\n    seeds: [-1]\n")
    out = subprocess.run([snakemake(), "-n", "--nolock", "--cores", "1", "--configfile", str(bad)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "grid[0].seeds[0]" in out.stdout + out.stderr


@pytest.mark.slow
def test_smoke_grid_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    results = tmp_path / "results"
    cmd = [snakemake(), "--cores", "2", "--nolock", "--configfile", "config/smoke.yaml", "--config",
           f"results={results}", f"resources={tmp_path}/resources", f"data_dir={shared_data}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = sorted(results.glob("runs/*/*/*/*/*/record.json"))  # task/method/budget/variant/seed
    assert len(records) == planned_runs(REPO / "config" / "smoke.yaml")
    logs = [(r.parent / "run.log").read_text() for r in records]
    assert all(logs)
    # under Snakemake (stderr is the log file): no progress-bar redraws, no line twice, eval metrics logged
    for text in logs:
        assert "\r" not in text and "\x1b[" not in text
        lines = [line.split(" ", 2)[-1] for line in text.splitlines()]
        assert len(lines) == len(set(lines)), text
    assert any(" eval: " in text for text in logs)
    assert len(list((tmp_path / "resources" / "data" / "sst2").glob("*/validation.jsonl"))) == 1  # <data digest>/
    db = results / "bench.sqlite"
    html = (results / "leaderboard" / "index.html").read_text()
    assert "bit-xor" in html and "sst2" in html and "lora" in html

    def rows() -> list:
        with sqlite3.connect(db) as con:
            tables = [t for (t,) in con.execute("select name from sqlite_master where type='table'")]
            return [(t, sorted(map(repr, con.execute(f"select * from {t}").fetchall()))) for t in sorted(tables)]

    # Snakemake's own report carries the site (index first), the paper tables and the plots
    zipped = tmp_path / "report.zip"
    rep = subprocess.run(cmd + ["--report", str(zipped)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rep.returncode == 0, rep.stdout[-3000:] + rep.stderr[-3000:]
    import zipfile

    with zipfile.ZipFile(zipped) as z:  # results are stored as data/raw/<hash>/<the output's own layout>
        names = z.namelist()
        page = z.read(next(n for n in names if n.endswith("/report.html"))).decode()
    assert any(re.search(r"/raw/\w+/index\.html$", n) for n in names) and any(n.endswith("/tasks/bit-xor.html")
                                                                             for n in names), names[:20]
    assert any(re.search(r"/raw/\w+/he2022-table2\.md$", n) for n in names)
    assert any(re.search(r"/raw/\w+/bit-xor-pareto\.svg$", n) for n in names)
    assert all(category in page for category in ("Leaderboard", "Paper tables", "Plots"))

    before = rows()
    assert any(len(r) == len(records) for _, r in before), "one row per run somewhere in the store"
    again = subprocess.run([str(Path(snakemake()).parent / "petl-bench"), "ingest", "--runs", str(results / "runs"),
                            "--db", str(db)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert rows() == before


def test_slurm_profile_plans_with_task_resources(tmp_path: Path) -> None:
    cfg = tmp_path / "res.yaml"
    cfg.write_text("gpus: 1\njob_resources:\n  default: {mem_mb: 8000, runtime: 60}\n  bit-xor: {mem_mb: 4000, "
                   "gpu_model: a100}\ntasks:\n  bit-xor: {backbone: gpt2}\n"
                   "grid:\n  - {tasks: [bit-xor], methods: [fpt]}\n")
    text = dry_run("--profile", "workflow/profiles/slurm", "--configfile", str(cfg), "--config",
                   f"results={tmp_path}/results")
    train = text[text.index("rule train:"):].split("\n\n")[0]
    for word in ("mem_mb=4000", "runtime=60", "gpu=1", "gpu_model=a100", "slurm_partition=gpu"):
        assert word in train


def test_local_profile_with_gpu_ids_passes_them_to_jobs(tmp_path: Path) -> None:
    cfg = tmp_path / "gpus.yaml"
    cfg.write_text("gpus: 1\ngpu_ids: [0, 1]\ntasks:\n  bit-xor: {backbone: gpt2}\n"
                   "grid:\n  - {tasks: [bit-xor], methods: [fpt, lora]}\n")
    text = dry_run("--profile", "workflow/profiles/local", "-p", "--configfile", str(cfg), "--config",
                   f"results={tmp_path}/results")
    assert text.count("--gpu-ids 0,1") == 2


def test_paper_grid_jobs_ask_their_task_familys_cluster_resources(tmp_path: Path) -> None:
    """Every train job of the paper grid, planned through the SLURM profile, carries its task family's GPU count,
    GPU model, memory and runtime from config.yaml's `job_resources` (the pretraining job: bit-memory's)."""
    table = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["job_resources"]
    cfg = load_config(REPO / "config" / "config.yaml")
    text = dry_run("--profile", "workflow/profiles/slurm", "--config", f"results={tmp_path}/results")
    jobs = re.findall(r"^rule (train|pretrain_bit):\n(.*?)(?=^\[|^rule |\Z)", text, re.S | re.M)
    seen = {}
    for rule, block in jobs:
        family = "bit-memory" if rule == "pretrain_bit" else cfg.task_family(re.search(r"task=([^,\s]+)", block)[1])
        res = dict(kv.split("=", 1) for kv in re.search(r"resources: (.*)", block)[1].split(", "))
        seen[family] = (int(res["gpu"]), res["gpu_model"], int(res["mem_mb"]), int(res["runtime"]))
        want = table[family]
        assert seen[family] == (want["gpus"], want["gpu_model"], want["mem_mb"], want["runtime"]), (family, res)
    assert sum(rule == "train" for rule, _ in jobs) == len(cfg.runs)
    assert set(seen) == set(table) - {"default"}  # every family of the grid has its own entry
    assert seen["xsum"] == (1, "a100", 64000, 2880) and seen["wmt16-en-ro"] == (1, "a100", 64000, 1440)
