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


def _rows(db: Path, sql: str) -> list[tuple]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        out = [tuple(r) for r in c.execute(text(sql))]
    engine.dispose()
    return out


def test_plugin_flag_and_homepage_come_from_the_record(tmp_path: Path) -> None:
    """The recorded `plugin` flag wins over the source: config-defined methods ("config") are no plugins, a
    config method composing a plugin's form is one; records from before the flag fall back to the source."""
    runs = tmp_path / "runs"
    write_record(runs, make_record("bit-xor", "ia3", source="petl-ia3 0.1.0", plugin=True,
                                   homepage="https://arxiv.org/abs/2205.05638"))
    write_record(runs, make_record("bit-xor", "mine", source="config", plugin=False))
    write_record(runs, make_record("bit-xor", "mixed", source="config", plugin=True))
    write_record(runs, make_record("bit-xor", "lora", source="petl-bench 0.1.0"))
    legacy = {"old-plugin": "other-dist 1.0", "old-config": "config"}
    for method, source in legacy.items():
        record = make_record("bit-xor", method, source=source)
        for block in (record["method"], record["config"]["method"]):
            for k in ("plugin", "homepage", "package", "version", "entry_point", "forms"):
                block.pop(k, None)
        write_record(runs, record)
    db = tmp_path / "bench.sqlite"
    ingest(runs, f"sqlite:///{db}")
    got = {name: (bool(plugin), homepage) for name, plugin, homepage in
           _rows(db, "SELECT name, plugin, homepage FROM methods")}
    assert got == {"ia3": (True, "https://arxiv.org/abs/2205.05638"), "mine": (False, None),
                   "mixed": (True, None), "lora": (False, None), "old-plugin": (True, None),
                   "old-config": (False, None)}


def test_database_from_before_the_new_columns_gains_them(runs: Path, tmp_path: Path) -> None:
    """create_all never alters a table: an older database gets the new method columns added, filled next ingest."""
    db = tmp_path / "bench.sqlite"
    write_record(runs, make_record("bit-xor", "ia3", source="petl-ia3 0.1.0", homepage="https://x.org/ia3"))
    ingest(runs, f"sqlite:///{db}")
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as c:
        c.execute(text("ALTER TABLE methods DROP COLUMN homepage"))
        c.execute(text("ALTER TABLE methods DROP COLUMN plugin"))
    engine.dispose()
    ingest(runs, f"sqlite:///{db}")
    assert _rows(db, "SELECT plugin, homepage FROM methods WHERE name='ia3'") == [(1, "https://x.org/ia3")]
    assert _rows(db, "SELECT plugin FROM methods WHERE name='fpt'") == [(0,)]


def _lstm_record(seed: int = 1, **kw: object) -> dict:
    """Lu et al.'s LSTM baseline as train.py records it: the baseline's LSTM replaced the task's transformer (and
    its path) when the spec was built, so the task block names the LSTM."""
    record = make_record("bit-xor", "lstm", seed=seed, backbone="lstm", init="random", **kw)  # type: ignore[arg-type]
    assert record["config"]["task"]["backbone_path"] is None
    return record


def test_swapped_backbone_baselines_are_indexed_under_their_own_backbone(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_record(runs, _lstm_record(1))
    failed = _lstm_record(2, status="failed", value=None)
    del failed["method"]  # failed.json (benchmark.record.write_failure) has only the config's method block
    folder = runs / "bit-xor" / "lstm" / "default" / "2"
    folder.mkdir(parents=True)
    (folder / "failed.json").write_text(json.dumps(failed))
    db = tmp_path / "bench.sqlite"
    ingest(runs, f"sqlite:///{db}")
    assert _rows(db, "SELECT seed, backbone FROM runs ORDER BY seed") == [(1, "lstm"), (2, "lstm")]
    assert _rows(db, "SELECT name, path FROM backbones") == [("lstm", None)]  # the task's path is not the LSTM's


def test_a_run_whose_key_changed_is_replaced_not_duplicated(tmp_path: Path) -> None:
    """A database indexed before swapped backbones were recognised holds the LSTM run under gpt2; the next
    ingest moves it (same record file) instead of adding a second row."""
    runs = tmp_path / "runs"
    write_record(runs, _lstm_record(1))
    db = tmp_path / "bench.sqlite"
    ingest(runs, f"sqlite:///{db}")
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as c:
        c.execute(text("INSERT INTO backbones (name) VALUES ('gpt2')"))
        c.execute(text("UPDATE runs SET backbone = 'gpt2'"))
    engine.dispose()
    ingest(runs, f"sqlite:///{db}")
    assert _rows(db, "SELECT backbone FROM runs") == [("lstm",)]
    assert len(_rows(db, "SELECT * FROM metrics")) == 2 and len(_rows(db, "SELECT * FROM provenance")) == 1


def test_log_tail_reads_like_a_terminal() -> None:
    """A log with tqdm redraws and ANSI codes (as Snakemake runs wrote them) shows one readable line per event."""
    from leaderboard.ingest import readable_lines

    noisy = ("\r  0%|          | 0/100 [00:00<?, ?it/s]\r 50%|#####     | 50/100\r100%|##########| 100/100\n"
             "2026-01-01 INFO step 30/100 eval: accuracy=91.5\n"
             "\r 75%|\x1b[A###  | 3/4\x1b[A\r                \r\x1b[A\n\n"
             "2026-01-01 INFO done\n")
    assert readable_lines(noisy) == ["100%|##########| 100/100", "2026-01-01 INFO step 30/100 eval: accuracy=91.5",
                                     " 75%|###  | 3/4", "2026-01-01 INFO done"]
