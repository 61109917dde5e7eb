"""A run killed with SIGKILL resumes from its last checkpoint and ends with exactly the metrics of an
uninterrupted run of the same seed (CPU)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from benchmark import rundir
from conftest import petl_bench

ARGS = ["--task", "bit-xor", "--method", "lora", "--backbone", "tiny-bert", "--seed", "3", "--set", "max_steps=300",
        "--set", "save_steps=25", "--set", "batch_size=4", "--set", "eval_steps=150"]


def train(out: Path) -> subprocess.Popen:
    return subprocess.Popen([petl_bench(), "train", *ARGS, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def complete_steps(out: Path) -> list[int]:
    """Steps of the checkpoints whose write finished (stamped with the run's identity)."""
    return [rundir.step_of(c) for c in rundir.checkpoints(out) if rundir.stamp_of(c) is not None]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = train(killed)
    deadline = time.time() + 240
    while not complete_steps(killed) and time.time() < deadline:
        time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "record.json").exists()
    # The kill may land mid-write of a later checkpoint; resume must take the newest *complete* one.
    steps_done = max(complete_steps(killed))
    assert 0 < steps_done < 300

    resumed = train(killed)
    assert resumed.wait(timeout=600) == 0
    straight = train(tmp_path / "straight")
    assert straight.wait(timeout=600) == 0

    a = json.loads((killed / "record.json").read_text())
    b = json.loads((tmp_path / "straight" / "record.json").read_text())
    assert a["train"]["resumed_from"].endswith(f"checkpoint-{steps_done}")
    assert a["metrics"] == b["metrics"]
    assert [c["eval_loss"] for c in a["curve"]] == [c["eval_loss"] for c in b["curve"]]
