"""Ingest: idempotent, atomic (a bad record names itself and nothing is written), any SQLAlchemy URL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from benchmark.cli import main as cli
from benchmark.record import RecordError
from leaderboard.ingest import ingest
from leaderboard.synthetic import make_record, write_record


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, ordered, for exact before/after comparisons."""
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        out = {t: sorted(map(tuple, c.execute(text(f'SELECT * FROM "{t}"'))), key=repr)
               for t in inspect(engine).get_table_names()}
    engine.dispose()
    return out


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    for seed in (1, 2, 3):
        write_record(d, make_record("bit-xor", "fpt", seed=seed, value=90 + seed), log="line 1\nline 2\n")
        write_record(d, make_record("bit-xor", "lora", "r8", seed=seed, value=80 + seed))
    write_record(d, make_record("bit-xor", "full", seed=1, status="diverged", value=55.0))
    write_record(d, make_record("bit-xor", "full", seed=2, status="failed", value=None))
    return d


def test_ingest_twice_gives_the_same_rows(runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    assert ingest(runs, f"sqlite:///{db}") == 8
    first = snapshot(db)
    assert len(first["runs"]) == 8 and len(first["reported"]) > 200
    assert ingest(runs, f"sqlite:///{db}") == 8
    assert snapshot(db) == first


def test_sqlite_uses_wal(runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    ingest(runs, f"sqlite:///{db}")
    with create_engine(f"sqlite:///{db}").connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_changed_record_updates_in_place(runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    ingest(runs, f"sqlite:///{db}")
    first = snapshot(db)
    before = {r[0]: r for r in first["runs"]}
    write_record(runs, make_record("bit-xor", "fpt", seed=1, value=12.5))
    ingest(runs, f"sqlite:///{db}")
    snap = snapshot(db)
    assert {r[0] for r in snap["runs"]} == set(before)  # ids kept
    assert len(snap["metrics"]) == len(first["metrics"])  # replaced, not duplicated
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        v = c.execute(text("SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.method='fpt' "
                           "AND r.seed=1 AND m.name='accuracy'")).scalar()
    assert v == 12.5


@pytest.mark.parametrize("content,expect", [
    ('{"schema": 1, "key": {"task": "bit-xor"', "not valid JSON"),          # truncated
    (json.dumps({"schema": 1, "status": "ok"}), "missing field"),           # incomplete
    ("", "not valid JSON"),                                                 # empty
])
def test_bad_record_is_named_and_nothing_is_written(runs: Path, tmp_path: Path, content: str, expect: str) -> None:
    db = tmp_path / "bench.sqlite"
    ingest(runs, f"sqlite:///{db}")
    before = snapshot(db)
    write_record(runs, make_record("bit-xor", "prefix", seed=1))  # a good new record beside the bad one
    bad = runs / "bit-xor" / "bitfit" / "default" / "1" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    with pytest.raises(RecordError) as e:
        ingest(runs, f"sqlite:///{db}")
    assert str(bad) in str(e.value) and expect in str(e.value) and "nothing was written" in str(e.value)
    assert snapshot(db) == before


def test_bad_record_into_a_fresh_database_creates_no_runs(runs: Path, tmp_path: Path) -> None:
    (runs / "x" / "record.json").parent.mkdir()
    (runs / "x" / "record.json").write_text("{")
    db = tmp_path / "fresh.sqlite"
    with pytest.raises(RecordError, match="x/record.json"):
        ingest(runs, f"sqlite:///{db}")
    assert not db.exists() or not snapshot(db).get("runs")


def test_cli_ingest_reports_bad_record_and_takes_db_url(runs: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "other.sqlite"
    assert cli(["ingest", "--runs", str(runs), "--db-url", f"sqlite:///{db}"]) == 0
    assert len(snapshot(db)["runs"]) == 8
    (runs / "y" / "record.json").parent.mkdir()
    (runs / "y" / "record.json").write_text("[]")
    assert cli(["ingest", "--runs", str(runs), "--db-url", f"sqlite:///{db}"]) == 2
    assert "y/record.json" in capsys.readouterr().err


def test_failed_json_is_a_failed_run_until_a_record_follows(runs: Path, tmp_path: Path) -> None:
    """benchmark.record.write_failure leaves failed.json (not record.json) beside the log of a crashed run."""
    folder = runs / "bit-xor" / "prefix" / "default" / "1"
    failure = make_record("bit-xor", "prefix", seed=1, status="failed", value=None)
    failure.update({"params": {}, "wall_time_s": None, "error": "RuntimeError: boom", "error_tail": "Traceback…"})
    folder.mkdir(parents=True)
    (folder / "failed.json").write_text(json.dumps(failure))
    db = tmp_path / "bench.sqlite"
    assert ingest(runs, f"sqlite:///{db}") == 9
    engine = create_engine(f"sqlite:///{db}")
    query = text("SELECT status, error, log_tail FROM runs WHERE method='prefix'")
    with engine.connect() as c:
        assert tuple(c.execute(query).one()) == ("failed", "RuntimeError: boom", "Traceback…")
    write_record(runs, make_record("bit-xor", "prefix", seed=1, value=77.0))  # the retry succeeded
    assert ingest(runs, f"sqlite:///{db}") == 9
    with engine.connect() as c:
        status, error, _ = c.execute(query).one()
    assert status == "ok" and error == "an earlier attempt failed: RuntimeError: boom"
    first = snapshot(db)
    ingest(runs, f"sqlite:///{db}")
    assert snapshot(db) == first
