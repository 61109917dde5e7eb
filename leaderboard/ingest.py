"""Records → database: validate every record first, then upsert them all in one transaction.

Validating before writing is what makes ingest atomic: a corrupt or incomplete record.json stops the whole
ingest with its path in the message and leaves the database as it was. Upserts keyed on the run's natural key
(and skipped when the record's hash is unchanged) make re-ingesting the same records a no-op.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from benchmark.record import Record, RecordError
from leaderboard import papers
from leaderboard.store import (Backbone, Method, Metric, Provenance, Reported, Run, Task, engine_for,
                               take_writer_lock)

LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 16_384
PROVENANCE_COLUMNS = ("git_commit", "git_dirty", "device", "host", "started", "finished", "python", "torch",
                      "cuda", "packages")


@dataclass(frozen=True)
class Loaded:
    path: Path
    sha256: str
    record: Record
    earlier_failure: str | None = None  # a failed.json for the same run beside a record.json that followed it

    @property
    def key(self) -> tuple[str, str, str, str, str, int]:
        """The run's identity as the database keys it: names, the backbone that trained, variant digest, seed."""
        k = self.record.key
        return (k["task"], k["method"], k["budget"], backbone_of(self.record), self.record.variant, k["seed"])


def method_info(record: Record) -> dict[str, Any]:
    """The record's method block: the top-level one a finished run writes, else the resolved config's (all a
    crashed run's failed.json has)."""
    info = record.method or record.config.get("method")
    return info if isinstance(info, dict) else {}


def backbone_of(record: Record) -> str:
    """The backbone the run really trained, as the spec resolved it (a baseline's replaces the task's when the spec
    is built, so a crashed run's failed.json, which lacks the top-level field, names it in its task block)."""
    if isinstance(record.backbone, str):
        return record.backbone
    task = record.config.get("task") or {}
    return str(task.get("backbone") or "unknown")


def is_plugin(info: dict[str, Any]) -> bool:
    """The record's own `plugin` flag; records from before it existed fall back to the source, where only a
    third-party distribution counts (built-ins say "petl-bench …", config-defined methods say "config")."""
    if isinstance(info.get("plugin"), bool):
        return info["plugin"]
    source = str(info.get("source") or "").split()
    return bool(source) and source[0] not in ("petl-bench", "config")


def _load(path: Path) -> Loaded:
    """Read, hash and validate one record; every failure becomes a RecordError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecordError(f"{path}: cannot read: {e}") from None
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: not valid JSON (truncated or corrupt?): {e}") from None
    return Loaded(path, hashlib.sha256(raw).hexdigest(), Record.parse(record, str(path)))


def load_planned_paths(planned: Path) -> set[str]:
    """The run folders (relative to runs/) that a grid planned: `path` of each entry of its planned.json."""
    try:
        items = json.loads(Path(planned).read_text())
    except (OSError, ValueError) as e:
        raise RecordError(f"{planned}: cannot read the planned runs: {e}") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("path"), str) for i in items):
        raise RecordError(f"{planned}: expected a JSON list of objects with a `path` (as the plan rule writes)")
    return {i["path"] for i in items}


def load_records(runs_dir: Path, planned: set[str] | None = None) -> list[Loaded]:
    """Every record.json (and failed.json, written by a crashed run) under `runs_dir` — only the planned run
    folders when `planned` is given — all validated; raise one RecordError listing every bad file."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RecordError(f"{runs_dir}: no such runs folder")
    loaded, errors, failures = [], [], []
    seen: dict[tuple[str, str, str, str, str, int], Path] = {}
    for name, out in (("record.json", loaded), ("failed.json", failures)):
        for path in sorted(runs_dir.rglob(name)):
            if planned is not None and path.parent.relative_to(runs_dir).as_posix() not in planned:
                continue
            try:
                out.append(_load(path))
            except RecordError as e:
                errors.append(str(e))
    for item in loaded:
        if item.key in seen:
            errors.append(f"{item.path}: same run key {item.key} as {seen[item.key]}")
        seen[item.key] = item.path
    # a crashed attempt (failed.json) is the run's result only until a later attempt writes record.json
    by_key = {it.key: i for i, it in enumerate(loaded)}
    for fail in failures:
        i = by_key.get(fail.key)
        if i is None:
            by_key[fail.key] = len(loaded)
            loaded.append(fail)
        elif loaded[i].path.name == "record.json":
            mixed = hashlib.sha256((loaded[i].sha256 + fail.sha256).encode()).hexdigest()
            loaded[i] = Loaded(loaded[i].path, mixed, loaded[i].record, str(fail.record.error or "failed"))
        else:
            errors.append(f"{fail.path}: same run key {fail.key} as {loaded[i].path}")
    if errors:
        raise RecordError(f"{len(errors)} corrupt or incomplete record(s); nothing was written:\n  "
                          + "\n  ".join(errors))
    return loaded


def _log_tail(record_path: Path, fallback: Any = None) -> str | None:
    log = record_path.parent / "run.log"
    if not log.is_file():
        return fallback[-LOG_TAIL_BYTES:] if isinstance(fallback, str) else None
    with log.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(readable_lines(text)[-LOG_TAIL_LINES:])


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def readable_lines(text: str) -> list[str]:
    """What a terminal would have left on screen: ANSI codes dropped, each carriage-return-redrawn line reduced
    to its last drawing, and blank lines removed (logs written before progress bars were kept off files)."""
    out = []
    for line in ANSI.sub("", text).split("\n"):
        last = next((part for part in reversed(line.split("\r")) if part.strip()), "")
        if last.strip():
            out.append(last.rstrip())
    return out


def _num(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    f = _num(value)
    return None if f is None else int(f)


def _last_eval(record: Record) -> float | None:
    """The last evaluated headline metric in the curve: what FPT reports (with †) for a run that diverged."""
    key = f"eval_{record.primary_metric}"
    curve = record.curve if isinstance(record.curve, list) else []
    values = [_num(h.get(key)) for h in curve if isinstance(h, dict)]
    values = [v for v in values if v is not None and v == v]
    return values[-1] if values else None


def _run_values(item: Loaded) -> dict[str, Any]:
    """The runs-table columns for one record (its key columns included)."""
    r = item.record
    params, info = r.params, method_info(r)
    task, method, budget, backbone, variant, seed = item.key
    paper = r.paper if isinstance(r.paper, dict) else {}
    return {
        "task": task, "method": method, "budget": budget, "backbone": backbone, "variant": variant, "seed": seed,
        "digest": r.digest, "label": str(r.label or method),
        "paper_task": str(paper.get("task") or (r.config.get("task") or {}).get("task") or task),
        "paper_backbone": str(paper.get("backbone") or backbone), "override": bool(paper.get("override")),
        "status": r.status, "diverged_at_step": _int(r.diverged_at_step),
        "primary_metric": r.primary_metric,
        "pre_divergence": _last_eval(r) if r.status == "diverged" else None,
        "eval_split": r.eval_split,
        "trainable": _int(params.get("trainable")), "total": _int(params.get("total")),
        "backbone_params": _int(params.get("backbone")), "trainable_pct": _num(params.get("trainable_pct")),
        "formula": _int(params.get("formula")), "sizes": info.get("sizes"),
        "positions_used": _int(params.get("positions_used")),
        "trainable_positions_used": _int(params.get("trainable_positions_used")),
        "steps": _int((r.train or {}).get("steps")),
        "wall_time_s": _num(r.wall_time_s), "peak_memory_mb": _num(r.peak_memory_mb),
        "config": r.config, "curve": r.curve if isinstance(r.curve, list) else [],
        "log_tail": _log_tail(item.path, r.error_tail),
        "error": r.error if isinstance(r.error, str) else (
            f"an earlier attempt failed: {item.earlier_failure}" if item.earlier_failure else None),
        "record_path": str(item.path.resolve()), "record_sha256": item.sha256,
    }


def _metric_rows(run_id: int, item: Loaded) -> list[dict[str, Any]]:
    return [{"run_id": run_id, "name": str(k), "value": _num(v)} for k, v in sorted(item.record.metrics.items())]


def _provenance_row(run_id: int, item: Loaded) -> dict[str, Any]:
    prov = item.record.provenance or {}
    row: dict[str, Any] = {"run_id": run_id}
    for c in PROVENANCE_COLUMNS:
        v = prov.get(c)
        row[c] = v if v is None or c == "packages" else (bool(v) if c == "git_dirty" else str(v))
    row["extra"] = {k: v for k, v in prov.items() if k not in PROVENANCE_COLUMNS}
    return row


def _upsert_dimensions(s: Session, items: list[Loaded]) -> None:
    """Tasks, backbones and methods: the last record seen wins for descriptive fields."""
    tasks = {t.name: t for t in s.scalars(select(Task))}
    backbones = {b.name: b for b in s.scalars(select(Backbone))}
    methods = {m.name: m for m in s.scalars(select(Method))}
    for item in items:
        r = item.record
        task_cfg = r.config.get("task") or {}
        name = str(r.key["task"])
        t = tasks.get(name) or tasks.setdefault(name, s.merge(Task(name=name)))
        if r.primary_metric:
            t.primary_metric = r.primary_metric
        if task_cfg.get("version") is not None:
            t.version = str(task_cfg["version"])
        bname = backbone_of(r)
        b = backbones.get(bname) or backbones.setdefault(bname, s.merge(Backbone(name=bname)))
        if task_cfg.get("backbone_path") and task_cfg.get("backbone") == bname:
            b.path = str(task_cfg["backbone_path"])
        mname = str(r.key["method"])
        m = methods.get(mname) or methods.setdefault(mname, s.merge(Method(name=mname)))
        _describe_method(m, method_info(r))


def _describe_method(m: Method, info: dict[str, Any]) -> None:
    """Copy what the record says about where the method comes from onto its row."""
    if info.get("source"):
        m.source = str(info["source"])
    if info.get("description"):
        m.description = str(info["description"])
    if "homepage" in info:  # a record from before the key existed leaves the row's as it was
        m.homepage = str(info["homepage"]) if info.get("homepage") else None
    m.plugin = is_plugin(info)


def sync_reported(s: Session) -> int:
    """Make the reported table equal the data files under leaderboard/reported/, keeping ids of unchanged cells."""
    cells = papers.load_cells()
    existing = {(c.table_id, c.row, c.task, c.metric): c for c in s.scalars(select(Reported))}
    wanted = set()
    for cell in cells:
        key = (cell["table_id"], cell["row"], cell["task"], cell["metric"])
        wanted.add(key)
        row = existing.get(key)
        if row is None:
            s.add(Reported(**cell))
        else:
            for k, v in cell.items():
                if getattr(row, k) != v:
                    setattr(row, k, v)
    for key, row in existing.items():
        if key not in wanted:
            s.delete(row)
    return len(cells)


def _drop_gone_runs(s: Session, runs_dir: Path, items: list[Loaded],
                    known: dict[tuple[str, str, str, str, str, int], tuple[int, str, str]]) -> None:
    """Make the rows under `runs_dir` mirror its records: delete rows whose record file is gone (deleted, or not
    planned) or now yields a different key, so a record is indexed once and a deleted one disappears."""
    key_of_path = {str(it.path.resolve()): it.key for it in items}
    root = str(Path(runs_dir).resolve()) + "/"
    moved = [key for key, (_, _, path) in known.items()
             if path.startswith(root) and key_of_path.get(path) != key]
    if not moved:
        return
    ids = [known.pop(key)[0] for key in moved]
    s.execute(delete(Metric).where(Metric.run_id.in_(ids)))
    s.execute(delete(Provenance).where(Provenance.run_id.in_(ids)))
    s.execute(delete(Run).where(Run.id.in_(ids)))


def ingest(runs_dir: Path, db_url: str, planned: Path | None = None) -> int:
    """Index every record.json under `runs_dir` (only the planned runs, given a planned.json) into `db_url`, and
    drop rows of this folder whose record is gone; returns how many records were ingested.

    New runs go in with bulk INSERTs and changed ones with bulk UPDATEs keyed on their id, so 10,000 records
    take seconds; unchanged records (same path and hash) are not touched at all.
    """
    items = load_records(runs_dir, load_planned_paths(planned) if planned is not None else None)
    engine = engine_for(db_url)
    with Session(engine) as s, s.begin():
        take_writer_lock(s.connection())  # PostgreSQL: one writer at a time (SQLite: BEGIN IMMEDIATE)
        sync_reported(s)
        _upsert_dimensions(s, items)
        s.flush()
        known = {(r.task, r.method, r.budget, r.backbone, r.variant, r.seed): (r.id, r.record_sha256, r.record_path)
                 for r in s.execute(select(Run.id, Run.task, Run.method, Run.budget, Run.backbone, Run.variant,
                                           Run.seed, Run.record_sha256, Run.record_path))}
        _drop_gone_runs(s, runs_dir, items, known)
        new = [it for it in items if it.key not in known]
        changed = [(known[it.key][0], it) for it in items
                   if it.key in known and known[it.key][1:] != (it.sha256, str(it.path.resolve()))]
        if changed:
            ids = [run_id for run_id, _ in changed]
            s.execute(update(Run), [{"id": run_id, **_run_values(it)} for run_id, it in changed])
            s.execute(delete(Metric).where(Metric.run_id.in_(ids)))
            s.execute(delete(Provenance).where(Provenance.run_id.in_(ids)))
        pairs = list(changed)
        for chunk in range(0, len(new), 1000):
            part = new[chunk:chunk + 1000]
            ids = s.scalars(insert(Run).returning(Run.id, sort_by_parameter_order=True),
                            [_run_values(it) for it in part]).all()
            pairs += list(zip(ids, part))
        metric_rows = [m for run_id, it in pairs for m in _metric_rows(run_id, it)]
        if metric_rows:
            s.execute(insert(Metric), metric_rows)
        if pairs:
            s.execute(insert(Provenance), [_provenance_row(run_id, it) for run_id, it in pairs])
    engine.dispose()
    return len(items)
