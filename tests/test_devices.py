"""Concurrent jobs on one machine get distinct GPUs from the configured list (simulated devices)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

CLAIM = """
import os, sys, time
from pathlib import Path
from benchmark.devices import claim_gpu
gpu = claim_gpu(sys.argv[1].split(","), Path(sys.argv[2]), poll_s=0.05)
assert os.environ["CUDA_VISIBLE_DEVICES"] == gpu
print(gpu, time.monotonic(), flush=True)
time.sleep(float(sys.argv[3]))
"""


def claim(ids: str, locks: Path, hold: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLAIM, ids, str(locks), str(hold)], stdout=subprocess.PIPE,
                            text=True)


def test_concurrent_jobs_get_distinct_gpus(tmp_path: Path) -> None:
    procs = [claim("0,1,2", tmp_path, 1.5) for _ in range(3)]
    gpus = [p.communicate(timeout=60)[0].split()[0] for p in procs]
    assert sorted(gpus) == ["0", "1", "2"]


def test_fourth_job_waits_for_a_free_gpu(tmp_path: Path) -> None:
    first = claim("7,9", tmp_path, 2.0)
    second = claim("7,9", tmp_path, 2.0)
    time.sleep(0.5)
    third = claim("7,9", tmp_path, 0.0)
    outs = [p.communicate(timeout=60)[0].split() for p in (first, second, third)]
    assert sorted(o[0] for o in outs[:2]) == ["7", "9"]
    assert outs[2][0] in {"7", "9"} and float(outs[2][1]) >= min(float(o[1]) for o in outs[:2]) + 1.5


def test_an_id_listed_twice_is_two_slots_on_one_gpu(tmp_path: Path) -> None:
    """gpu_ids [5, 5]: two jobs share GPU 5 at once, a third waits for one of them."""
    first, second = claim("5,5", tmp_path, 2.0), claim("5,5", tmp_path, 2.0)
    time.sleep(0.5)
    third = claim("5,5", tmp_path, 0.0)
    outs = [p.communicate(timeout=60)[0].split() for p in (first, second, third)]
    assert [o[0] for o in outs] == ["5", "5", "5"]
    assert abs(float(outs[0][1]) - float(outs[1][1])) < 1.5  # concurrent, not one after the other
    assert float(outs[2][1]) >= min(float(o[1]) for o in outs[:2]) + 1.5
