"""A run folder's life: one trainer at a time, resume only from this run's own complete checkpoints, tidy at the end.

A Trainer checkpoint counts only once `identity.json` is in it: the stamp is written after the Trainer has written
everything else (`on_save`), and names the run's digest. So a checkpoint cut short by a kill has no stamp and is
skipped, and a checkpoint of another configuration (same folder, different spec) is never resumed.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from transformers import TrainerCallback

log = logging.getLogger("petl_bench.rundir")

STAMP = "identity.json"
LOCK = ".lock"
CHECKPOINT = re.compile(r"checkpoint-(\d+)")


class RunLocked(RuntimeError):
    """Another process is training into the same run folder."""


class ForeignCheckpoint(RuntimeError):
    """The run folder holds checkpoints of a different configuration."""


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder for the run's lifetime (released by the kernel if the process
    dies, even by SIGKILL). A second trainer refuses at once, naming the holder's PID and host."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "an unknown process"
            raise RunLocked(f"{out} is already being trained by {holder}; wait for it to finish, or stop that "
                            f"process first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def data_lock(data: Path | None) -> Iterator[None]:
    """Serialise reading (and tokenising) one prepared data folder across processes. `datasets` caches a tokenised
    split by content, so with the lock only the first of many jobs that start together tokenises; the others wait for
    it and load its cache instead of each tokenising the same dataset again. No folder (generated data), or one that
    cannot hold the lock file (read-only): no lock."""
    try:
        fd = os.open(Path(data) / ".tokenise.lock", os.O_RDWR | os.O_CREAT, 0o644) if data is not None else None
    except OSError:  # a read-only folder of someone else's: read it unlocked, as before
        fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def step_of(path: Path) -> int:
    m = CHECKPOINT.fullmatch(Path(path).name)
    return int(m.group(1)) if m else -1


def finished(checkpoint: Path) -> bool:
    """Whether the checkpoint is the run's last one (its step reached the schedule's max_steps)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(state.get("max_steps")) and state.get("global_step", 0) >= state["max_steps"]


def checkpoints(out: Path) -> list[Path]:
    """The Trainer's checkpoint-N folders, newest first."""
    folder = out / "checkpoint"
    found = [p for p in folder.iterdir() if p.is_dir() and step_of(p) >= 0] if folder.is_dir() else []
    return sorted(found, key=step_of, reverse=True)


def stamp_of(checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's identity stamp, or None for a checkpoint that never finished writing."""
    try:
        stamp = json.loads((checkpoint / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and isinstance(stamp.get("digest"), str) else None


def resume_point(out: Path, digest: str) -> Path | None:
    """The newest complete checkpoint of this run. Incomplete ones (killed mid-write) are removed; a checkpoint
    of another configuration is an error (a run folder belongs to one identity; `--force` starts afresh)."""
    for ckpt in checkpoints(out):
        stamp = stamp_of(ckpt)
        if stamp is None:
            log.warning("removing incomplete checkpoint %s (its write was interrupted)", ckpt)
            shutil.rmtree(ckpt)
            continue
        if stamp["digest"] != digest:
            raise ForeignCheckpoint(f"{ckpt} belongs to run {stamp['digest'][:12]}, not to this run "
                                    f"({digest[:12]}); pass --force to discard it and train from scratch")
        return ckpt
    return None


def start_fresh(out: Path) -> None:
    """`--force`: nothing of an earlier run in this folder may be resumed or mistaken for this one's."""
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    for name in ("record.json", "failed.json", "delta.safetensors"):
        (out / name).unlink(missing_ok=True)


class IdentityStamp(TrainerCallback):
    """Stamp each checkpoint with the run's digest once the Trainer has finished writing it."""

    def __init__(self, out: Path, digest: str) -> None:
        self.out, self.digest = out, digest

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        ckpt = self.out / "checkpoint" / f"checkpoint-{state.global_step}"
        if not ckpt.is_dir():  # e.g. a non-main process of a distributed run
            return
        tmp = ckpt / f".{STAMP}.tmp"
        tmp.write_text(json.dumps({"digest": self.digest, "step": state.global_step}))
        os.replace(tmp, ckpt / STAMP)


def tidy(out: Path, keep_checkpoints: bool) -> None:
    """After record.json: keep the log, the record and the trainable deltas; drop full checkpoints unless asked."""
    if not keep_checkpoints:
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    delta = out / "delta.safetensors"
    if delta.exists():
        mask = os.umask(0o022)
        os.umask(mask)
        delta.chmod(0o666 & ~mask)  # safetensors writes 0600; the deltas are read like the record
