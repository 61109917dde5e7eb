"""A plugin method runs in the grid like a built-in, and a broken plugin fails only its own runs.

One Snakemake run of a tiny grid (tiny-bert on bit-xor) with the example plugin's `ia3` and a plugin that fails
to import, under --keep-going: ia3's record carries its package, version and homepage; the broken run leaves a
failure naming its package; the records that exist are then ranked on the leaderboard.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO, snakemake
from test_plugins import ia3, write_plugin  # noqa: F401  (the session fixture that installs petl-ia3)


@pytest.mark.slow
def test_plugin_method_runs_in_the_grid_and_a_broken_one_is_fenced_off(tmp_path: Path, ia3: None) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "petl_fake_gridboom.py").write_text("raise ImportError('petl_gridboom needs a missing library')\n")
    write_plugin(site, "petl-gridboom", "petl_fake_gridboom_unused", "", {"boom": "petl_fake_gridboom:METHOD"})
    results = tmp_path / "results"
    config = tmp_path / "plugins.yaml"
    config.write_text(yaml.safe_dump({
        "threads": 1,
        "tasks": {"bit-xor": {"backbone": "tiny-bert", "train": {"max_steps": 4, "batch_size": 8},
                              "options": {"eval_size": 16}}},
        "grid": [{"tasks": ["bit-xor"], "methods": ["ia3", "boom"], "seeds": [1]}],
    }))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "PATH": os.pathsep.join([str(BIN), os.environ["PATH"]])}  # rules call the petl-bench script
    cmd = [snakemake(), "--cores", "1", "--nolock", "--keep-going", "--configfile", str(config), "--config",
           f"results={results}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode != 0, "the broken plugin's run must fail"
    assert "petl-gridboom" in out.stderr, out.stderr[-3000:]  # named when the grid is planned, too
    # the failed job's reason, one line on the console (not only the 1 KB spec Snakemake prints)
    line = next((x for x in out.stderr.splitlines()  # task/method/budget/<variant>/seed
                 if re.match(r"train bit-xor/boom/default/[0-9a-f]{12}/1: ", x)), "")
    assert "petl-bench train: failed: " in line and "petl-gridboom" in line, out.stderr[-3000:]

    runs = results / "runs" / "bit-xor"
    ia3, boom = (next((runs / m / "default").glob("*/1")) for m in ("ia3", "boom"))  # <variant>/<seed>
    record = json.loads((ia3 / "record.json").read_text())
    assert record["status"] == "ok"
    method = record["config"]["method"]
    assert method["source"] == "petl-ia3 0.1.0" and method["package"] == "petl-ia3" and method["version"] == "0.1.0"
    assert method["plugin"] is True and method["homepage"] == "https://arxiv.org/abs/2205.05638"
    assert record["method"]["plugin"] is True and record["params"]["formula"] == 2 * 64 + 2 * 64
    assert any(".petl_ia_0_k." in n for n in record["params"]["trainable_tensors"])

    failed = json.loads((boom / "failed.json").read_text())
    assert "petl-gridboom 0.1.0" in failed["error"] and "missing library" in failed["error"]
    assert "petl-gridboom" in (boom / "run.log").read_text()

    # the Snakefile's onerror handler rebuilt the leaderboard over what finished, the failure included
    index = (results / "leaderboard" / "index.html").read_text()
    assert "ia3" in index and "petl-ia3" in index and "failed" in index
    task_page = (results / "leaderboard" / "tasks" / "bit-xor.html").read_text()
    assert "boom" in task_page and "ia3" in task_page and "failed" in task_page

    # the next run retries the failed one and rebuilds the database and leaderboard after it: the handler's
    # leaderboard, written outside Snakemake, must not make the grid look complete
    plan = subprocess.run([*cmd, "-n"], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, re.M))
    assert (jobs.get("train"), jobs.get("ingest"), jobs.get("report")) == ("1", "1", "1"), plan.stdout[-3000:]
    trained = re.findall(r"output: \S+/runs/bit-xor/(\w+)/default/\w+/1/record.json", plan.stdout)
    assert trained == ["boom"], plan.stdout[-3000:]
