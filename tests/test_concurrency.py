"""Eight runs finishing at once, ingested by two concurrent ingests: every record lands exactly once."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

from benchmark.record import now, write_record


def record(seed: int) -> dict:
    return {"schema": 1, "key": {"task": "bit-xor", "method": "lora", "budget": "default", "seed": seed},
            "digest": f"{seed:064x}", "variant": "0" * 12,
            "status": "ok", "metrics": {"accuracy": 50.0 + seed, "loss": 0.5}, "primary_metric": "accuracy",
            "config": {"task": {"name": "bit-xor", "task": "bit-xor", "backbone": "tiny-bert"},
                       "method": {"name": "lora", "source": "petl-bench 0.1.0"}},
            "method": {"name": "lora", "sizes": {"r": 16}},
            "params": {"trainable": 10, "total": 100, "backbone": 90, "trainable_pct": 11.1},
            "train": {"steps": 5}, "curve": [], "wall_time_s": 1.0, "peak_memory_mb": 10.0,
            "provenance": {"seed": seed, "started": now(), "finished": now(), "host": "test"}}


def finish(args: tuple) -> None:
    root, seed, barrier = args
    barrier.wait()
    write_record(record(seed), Path(root) / f"bit-xor/lora/default/{seed}/record.json")


def ingest_once(args: tuple) -> int:
    from leaderboard.ingest import ingest

    runs, db, barrier = args
    barrier.wait()
    return ingest(Path(runs), f"sqlite:///{db}")


def test_eight_records_at_once_then_two_ingests(tmp_path: Path) -> None:
    runs, db = tmp_path / "runs", tmp_path / "bench.sqlite"
    ctx = mp.get_context("spawn")
    with ctx.Manager() as m:
        barrier = m.Barrier(8)
        with ctx.Pool(8) as pool:
            pool.map(finish, [(str(runs), s, barrier) for s in range(8)])
        barrier2 = m.Barrier(2)
        with ctx.Pool(2) as pool:
            counts = pool.map(ingest_once, [(str(runs), str(db), barrier2)] * 2)
    assert counts == [8, 8]
    assert sorted(p.name for p in runs.rglob("*") if p.is_file()) == ["record.json"] * 8
    with sqlite3.connect(db) as con:
        keys = con.execute("select task, method, budget, seed from runs").fetchall()
    assert sorted(keys) == [("bit-xor", "lora", "default", s) for s in range(8)]


def test_concurrent_ingests_into_a_fresh_postgresql_database(tmp_path: Path) -> None:
    """Set PETL_BENCH_PG_ADMIN_URL (a PostgreSQL server URL whose user may create databases) to run this."""
    import os
    import subprocess
    import sys
    import uuid

    import pytest

    admin = os.environ.get("PETL_BENCH_PG_ADMIN_URL")
    if not admin:
        pytest.skip("no PostgreSQL server (PETL_BENCH_PG_ADMIN_URL)")
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from leaderboard.store import Run
    from leaderboard.synthetic import make_record, write_record as write_synthetic

    name = f"petl_{uuid.uuid4().hex[:12]}"
    with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    runs = tmp_path / "runs"
    for seed in range(1, 4):
        for method in ("lora", "bitfit", "m" * 100):  # the longest name planning allows
            write_synthetic(runs, make_record("bit-xor", method, seed=seed))
    bin_ = Path(sys.executable).parent / "petl-bench"
    procs = [subprocess.Popen([str(bin_), "ingest", "--runs", str(runs), "--db-url", url], stderr=subprocess.PIPE,
                              text=True) for _ in range(8)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, "\n".join(errors)[-3000:]
    with Session(create_engine(url)) as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 9
