"""GPU assignment for concurrent jobs on one machine.

Snakemake limits how many GPU jobs run at once (`--resources gpu=N`) but does not say
which GPU a job gets. Each training job claims one id from the configured list with an
exclusive file lock, held for the life of the process, and exports CUDA_VISIBLE_DEVICES
before CUDA is initialised. A lock dies with its process, so a killed job frees its GPU.
An id listed k times is k slots on that GPU: `[0, 0, 0, 0]` lets four small jobs share GPU 0.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

_held: list[IO] = []  # open lock files: the claim lasts as long as the process


def claim_gpu(ids: list[str], lock_dir: Path, timeout_s: float = 3600, poll_s: float = 1.0) -> str:
    """Claim the first free slot in `ids` (waiting for one), set CUDA_VISIBLE_DEVICES to its GPU and return it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    slots = [(gpu, ids[:i].count(gpu)) for i, gpu in enumerate(ids)]
    while True:
        for gpu, slot in slots:
            f = open(lock_dir / (f"gpu-{gpu}.lock" if slot == 0 else f"gpu-{gpu}-slot{slot}.lock"), "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            f.write(f"{os.getpid()}\n")
            f.flush()
            _held.append(f)
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            return gpu
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {ids} in {lock_dir} after {timeout_s:.0f} s")
        time.sleep(poll_s)
