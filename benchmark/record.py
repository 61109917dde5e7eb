"""The run record: one JSON file per run, the unit of truth that the database indexes.

Written atomically (temp file in the same folder, fsync, rename), so a reader sees the
whole record or none; an existing record is never overwritten unless asked.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import socket
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed")
REQUIRED = ("schema", "key", "digest", "variant", "status", "metrics", "config", "params", "wall_time_s",
            "provenance")
DIGEST = re.compile(r"[0-9a-f]{64}")
VARIANT = re.compile(r"[0-9a-f]{12}")
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


def write_record(record: "Record | dict[str, Any]", path: Path, *, overwrite: bool = False) -> Path:
    """Atomically write `record` to `path`; refuse to replace an existing record unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already holds a record; move it away or pass --force to replace it")
    record = (record if isinstance(record, Record) else Record.parse(record, str(path))).to_json()
    validate_record(record, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; a record is read like the log beside it
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def validate_record(record: Any, where: str) -> dict[str, Any]:
    """The record schema, strictly, for the writer and for ingest alike: raise RecordError naming the file and the
    field. Metrics must be finite numbers (a NaN score is no score); a seed of 1.7 or true is not a seed."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record must be a JSON object")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}"
                          + (" (written before run identities: rerun it)" if "digest" in missing else ""))
    if record["status"] not in STATUSES:
        raise RecordError(f"{where}: status {record['status']!r} is not one of {STATUSES}")
    key = record["key"]
    if not isinstance(key, dict):
        raise RecordError(f"{where}: key must be an object")
    for k in ("task", "method", "budget", "seed"):
        if k not in key:
            raise RecordError(f"{where}: key lacks {k!r}")
    for k in ("task", "method", "budget"):
        if not isinstance(key[k], str) or not key[k]:
            raise RecordError(f"{where}: key.{k} {key[k]!r} is not a name")
    if not isinstance(key["seed"], int) or isinstance(key["seed"], bool) or key["seed"] < 0:
        raise RecordError(f"{where}: key.seed {key['seed']!r} is not a non-negative integer")
    if not (isinstance(record["digest"], str) and DIGEST.fullmatch(record["digest"])):
        raise RecordError(f"{where}: digest {record['digest']!r} is not a SHA-256 hex digest")
    if not (isinstance(record["variant"], str) and record["digest"] and VARIANT.fullmatch(record["variant"])):
        raise RecordError(f"{where}: variant {record['variant']!r} is not a 12-digit hex digest")
    for k in ("metrics", "params", "config", "provenance"):
        if not isinstance(record[k], dict):
            raise RecordError(f"{where}: {k} must be an object")
    for name, value in record["metrics"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RecordError(f"{where}: metric {name!r} is {value!r}, not a finite number")
    if record["status"] == "ok" and not record["metrics"]:
        raise RecordError(f"{where}: status ok with no metrics")
    wall = record["wall_time_s"]
    if wall is not None and (isinstance(wall, bool) or not isinstance(wall, (int, float)) or not math.isfinite(wall)):
        raise RecordError(f"{where}: wall_time_s {wall!r} is not a finite number")
    return record


@dataclass(frozen=True)
class Record:
    """A run record, typed once: built by training (and by `write_failure` and the synthetic records), checked by
    `validate_record`, read by ingest. `to_json` is the file's content; `parse` the only way back."""
    key: dict[str, Any]  # {task, method, budget, seed}: the names, as the config gave them
    digest: str  # the run's identity (benchmark.spec.RunSpec.digest)
    variant: str  # the identity without the seed: the seeds of one configuration share it
    status: str
    metrics: dict[str, float]
    config: dict[str, Any]  # the resolved RunSpec, as JSON
    params: dict[str, Any]
    wall_time_s: float | None
    provenance: dict[str, Any]
    schema: int = SCHEMA_VERSION
    label: str | None = None
    backbone: str | None = None  # the backbone that really trained
    paper: dict[str, Any] = field(default_factory=dict)  # the paper cell it answers, by explicit fields
    method: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    convergence: dict[str, Any] = field(default_factory=dict)
    primary_metric: str | None = None
    paper_metric: str | None = None
    protocol: Any = None
    eval_split: str | None = None
    diverged_at_step: int | None = None
    peak_memory_mb: float | None = None
    determinism: Any = None
    delta: str | None = None
    log: str | None = None
    timing: dict[str, Any] | None = None  # where the wall time went (benchmark.train.timing)
    error: str | None = None
    error_tail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, raw: Any, where: str) -> "Record":
        validate_record(raw, where)
        unknown = sorted(set(raw) - FIELDS)
        if unknown:
            raise RecordError(f"{where}: unknown field(s) {unknown}; a record has {', '.join(sorted(FIELDS))}")
        return cls(**raw)


FIELDS = {f.name for f in fields(Record)}


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
    record = Record(key=spec["key"], digest=spec["digest"], variant=spec["variant"], label=spec.get("label"),
                    status="failed", metrics={}, config=spec, params={}, wall_time_s=None,
                    error=f"{type(error).__name__}: {error}", error_tail=trace[-4000:], log="run.log",
                    provenance=provenance(spec["seed"], started))
    return write_record(record, Path(out) / "failed.json", overwrite=True)
