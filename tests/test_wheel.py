"""A built wheel works outside the checkout: everything the package reads at run time ships inside it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import shutil

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installed_elsewhere_trains_one_run(tmp_path: Path) -> None:
    dist, source = tmp_path / "dist", tmp_path / "source"
    # Built from a copy: setuptools writes petl_bench.egg-info beside the sources, and a stale one in the checkout
    # would shadow the installed entry points for every later test run from the repo root.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "results", "resources", ".snakemake",
                                                                "*.egg-info", "__pycache__", ".whl", ".device-data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(source)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(dist.glob("petl_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "benchmark/schemas/config.schema.yaml" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    # Only the wheel's copy is importable (-P: no cwd on the path; the checkout's editable finder is outranked by
    # PYTHONPATH), and it runs from a folder that is not the checkout.
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-P", "-c", "import benchmark; print(benchmark.__file__)"], env=env,
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert probe.stdout.startswith(str(site)), probe.stdout
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-P", "-m", "benchmark.cli", "train", "--task", "bit-xor", "--method", "lora",
                           "--backbone", "tiny-bert", "--set", "max_steps=2", "--set", "eval_steps=2", "--out", str(out),
                           "--resources", str(tmp_path / "resources")],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "ok" and record["train"]["steps"] == 2
