"""The run record: one JSON file per run, the unit of truth that the database indexes.

Written atomically (temp file in the same folder, fsync, rename), so a reader sees the
whole record or none; an existing record is never overwritten unless asked.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed")
REQUIRED = ("schema", "key", "status", "metrics", "config", "params", "wall_time_s", "provenance")
PACKAGES = ("petl-bench", "torch", "transformers", "accelerate", "datasets", "evaluate", "sacrebleu", "rouge-score",
            "snakemake", "sqlalchemy", "jinja2", "peft", "numpy")


class RecordError(ValueError):
    """A record file that is missing, truncated or not in the schema; the message names the file."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(seed: int, started: str, project_dir: Path | None = None) -> dict[str, Any]:
    """Where, when and with what a run happened: git state, package versions, hardware."""
    import torch

    project_dir = project_dir or Path(__file__).resolve().parents[1]
    commit = _git("rev-parse", "HEAD", cwd=project_dir)
    dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=project_dir)
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    from benchmark.environment import lock_status

    cuda = torch.cuda.is_available()
    return {
        "git_commit": commit,
        "git_dirty": bool(dirty) if dirty is not None else None,
        "packages": versions,
        "lock": lock_status(),  # the lock file's digest and whether the installed set is the locked one
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "seed": seed,
        "started": started,
        "finished": now(),
    }


def write_record(record: dict[str, Any], path: Path, *, overwrite: bool = False) -> Path:
    """Atomically write `record` to `path`; refuse to replace an existing record unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already holds a record; move it away or pass --force to replace it")
    validate_record(record, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def validate_record(record: Any, where: str) -> dict[str, Any]:
    """Check the fields every consumer relies on; raise RecordError naming the file and the field."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record must be a JSON object")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}")
    if record["status"] not in STATUSES:
        raise RecordError(f"{where}: status {record['status']!r} is not one of {STATUSES}")
    for k in ("task", "method", "budget", "seed"):
        if k not in record["key"]:
            raise RecordError(f"{where}: key lacks {k!r}")
    if not isinstance(record["metrics"], dict):
        raise RecordError(f"{where}: metrics must be an object")
    return record


def read_record(path: Path) -> dict[str, Any]:
    """Load and validate one record file."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: no such record") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON (truncated or corrupt?): {e}") from None
    return validate_record(record, str(path))


def write_failure(spec: dict[str, Any], out: Path, error: BaseException, trace: str, started: str) -> Path:
    """Record a crashed run as `failed.json` beside its log. Not `record.json`: Snakemake deletes a failed
    job's outputs, and a later successful attempt must not be blocked; the leaderboard shows both."""
    record = {
        "schema": SCHEMA_VERSION, "key": spec["key"], "status": "failed", "metrics": {}, "config": spec,
        "params": {}, "wall_time_s": None, "error": f"{type(error).__name__}: {error}",
        "error_tail": trace[-4000:], "log": "run.log", "provenance": provenance(spec["seed"], started),
    }
    return write_record(record, Path(out) / "failed.json", overwrite=True)
