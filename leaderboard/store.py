"""The database: an index over run records (rebuildable from them at any time) plus the papers' reported numbers.

SQLAlchemy 2.0 typed ORM, so the same schema works on the default SQLite file (WAL mode, so the report can read
while an ingest writes) and on a shared PostgreSQL leaderboard given by URL.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, Boolean, Engine, Float, ForeignKey, Integer, String, Text, UniqueConstraint,
                        create_engine, event, false, inspect)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from benchmark.errors import ConfigError


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Task(Base):
    __tablename__ = "tasks"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    primary_metric: Mapped[Optional[str]] = mapped_column(String(100))
    version: Mapped[Optional[str]] = mapped_column(String(50))


class Backbone(Base):
    __tablename__ = "backbones"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    path: Mapped[Optional[str]] = mapped_column(Text)


class Method(Base):
    __tablename__ = "methods"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[Optional[str]] = mapped_column(String(200))
    description: Mapped[Optional[str]] = mapped_column(Text)
    # as the run record states them (benchmark.registry.provenance), not guessed from `source`: a method defined
    # in config has source "config" and is no plugin, while one composing a plugin's form is
    homepage: Mapped[Optional[str]] = mapped_column(Text)
    plugin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Run(Base):
    """One run record, keyed by its identity: the names, the backbone that trained, the variant (the digest of the
    resolved spec without the seed) and the seed, so two configurations under one name are two rows, never one."""
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("task", "method", "budget", "backbone", "variant", "seed",
                                       name="uq_run_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(ForeignKey("tasks.name"), index=True)
    method: Mapped[str] = mapped_column(ForeignKey("methods.name"))
    budget: Mapped[str] = mapped_column(String(100))
    backbone: Mapped[str] = mapped_column(ForeignKey("backbones.name"))
    variant: Mapped[str] = mapped_column(String(12))
    seed: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(Text)  # readable name of the configuration (method + grid overrides)
    paper_task: Mapped[str] = mapped_column(String(100))  # the paper cell it answers, by explicit fields
    paper_backbone: Mapped[str] = mapped_column(String(200))
    override: Mapped[bool] = mapped_column(Boolean, default=False)  # a config method that replaces a built-in
    status: Mapped[str] = mapped_column(String(20))
    diverged_at_step: Mapped[Optional[int]] = mapped_column(Integer)
    pre_divergence: Mapped[Optional[float]] = mapped_column(Float)  # last evaluated primary metric before it
    primary_metric: Mapped[Optional[str]] = mapped_column(String(100))
    eval_split: Mapped[Optional[str]] = mapped_column(String(100))
    trainable: Mapped[Optional[int]] = mapped_column(BigInteger)
    total: Mapped[Optional[int]] = mapped_column(BigInteger)
    backbone_params: Mapped[Optional[int]] = mapped_column(BigInteger)
    trainable_pct: Mapped[Optional[float]] = mapped_column(Float)
    formula: Mapped[Optional[int]] = mapped_column(BigInteger)
    # Lu et al.'s convention: a trained position table counted only for the rows the task reads (FPT tasks)
    positions_used: Mapped[Optional[int]] = mapped_column(Integer)
    trainable_positions_used: Mapped[Optional[int]] = mapped_column(BigInteger)
    sizes: Mapped[Optional[dict[str, Any]]] = mapped_column()
    steps: Mapped[Optional[int]] = mapped_column(Integer)
    wall_time_s: Mapped[Optional[float]] = mapped_column(Float)
    peak_memory_mb: Mapped[Optional[float]] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column()
    curve: Mapped[list[Any]] = mapped_column()
    log_tail: Mapped[Optional[str]] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)
    record_path: Mapped[str] = mapped_column(Text)
    record_sha256: Mapped[str] = mapped_column(String(64))

    metrics: Mapped[list["Metric"]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                   order_by="Metric.name")
    provenance: Mapped[Optional["Provenance"]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Metric(Base):
    __tablename__ = "metrics"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Optional[float]] = mapped_column(Float)
    run: Mapped[Run] = relationship(back_populates="metrics")


class Provenance(Base):
    __tablename__ = "provenance"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    git_commit: Mapped[Optional[str]] = mapped_column(String(64))
    git_dirty: Mapped[Optional[bool]] = mapped_column(Boolean)
    device: Mapped[Optional[str]] = mapped_column(String(200))
    host: Mapped[Optional[str]] = mapped_column(String(200))
    started: Mapped[Optional[str]] = mapped_column(String(40))
    finished: Mapped[Optional[str]] = mapped_column(String(40))
    python: Mapped[Optional[str]] = mapped_column(String(40))
    torch: Mapped[Optional[str]] = mapped_column(String(60))
    cuda: Mapped[Optional[str]] = mapped_column(String(40))
    packages: Mapped[Optional[dict[str, Any]]] = mapped_column()
    extra: Mapped[Optional[dict[str, Any]]] = mapped_column()
    run: Mapped[Run] = relationship(back_populates="provenance")


class Reported(Base):
    """One number printed in a paper's table, mapped (where one corresponds) to this project's method/budget."""
    __tablename__ = "reported"
    __table_args__ = (UniqueConstraint("table_id", "row", "task", "metric", name="uq_reported_cell"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paper: Mapped[str] = mapped_column(String(50))
    table_id: Mapped[str] = mapped_column(String(100), index=True)
    table: Mapped[str] = mapped_column(String(100))
    row: Mapped[str] = mapped_column(String(200))
    row_order: Mapped[int] = mapped_column(Integer)
    method: Mapped[Optional[str]] = mapped_column(String(200))
    budget: Mapped[Optional[str]] = mapped_column(String(100))
    task: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(100))
    backbone: Mapped[str] = mapped_column(String(200))
    match_backbone: Mapped[bool] = mapped_column(Boolean, default=False)
    statistic: Mapped[str] = mapped_column(String(20), default="mean")
    value: Mapped[float] = mapped_column(Float)
    params: Mapped[Optional[str]] = mapped_column(String(50))
    params_pct: Mapped[Optional[float]] = mapped_column(Float)
    flag: Mapped[Optional[str]] = mapped_column(String(20))
    note: Mapped[Optional[str]] = mapped_column(Text)
    citation: Mapped[str] = mapped_column(Text)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=120000")  # first, so every later statement waits out a concurrent writer
    _use_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself


def _use_wal(cur: Any, tries: int = 40) -> None:
    """Put the file in WAL mode (a property of the file, so only the first connection switches it).

    Switching takes an exclusive lock, and SQLite answers "database is locked" at once, without the busy
    handler, when another process opens the fresh file at the same moment: retry with a growing pause."""
    for attempt in range(tries):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write: two concurrent ingests
    then run one after the other, each reading what the other committed (no lost or duplicate rows)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def engine_for(db_url: str) -> Engine:
    """An engine for any SQLAlchemy URL, with the schema created; SQLite files get WAL mode and foreign keys."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # concurrent first ingests: one creates the schema, the others wait
            take_writer_lock(conn)
            _refuse_pre_identity(conn)
            Base.metadata.create_all(conn)
            _add_missing_columns(conn)
        return engine
    _refuse_pre_identity(engine)
    _create_schema(engine)
    _add_missing_columns(engine)
    return engine


WRITER_LOCK = 0x5045_544C  # "PETL": the PostgreSQL advisory lock that writers of this schema take


def take_writer_lock(conn: Any) -> None:
    """Serialise writers for the rest of the transaction, as SQLite's BEGIN IMMEDIATE does: on PostgreSQL two
    ingests would otherwise both insert the same new task/method rows (or both create the schema) and one fail."""
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK})


def _refuse_pre_identity(bind: Any) -> None:
    """A database from before run identities keys runs on names alone; it cannot be altered into one that does."""
    have = inspect(bind)
    if have.has_table("runs") and "variant" not in {c["name"] for c in have.get_columns("runs")}:
        raise ConfigError(f"{bind.engine.url}: this database predates run identities (runs keyed by name); it is "
                          f"only an index over the records, so delete it (or use a new --db) and ingest again")


def _create_schema(engine: Engine, tries: int = 5) -> None:
    """create_all, tolerating a concurrent process that creates the same tables first."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(tries):
        try:
            Base.metadata.create_all(engine)
            return
        except OperationalError as e:
            if "already exists" not in str(e) or attempt == tries - 1:
                raise


def _add_missing_columns(bind: Any) -> None:
    """Add columns that a newer schema has and an existing database lacks (create_all never alters a table).

    The database is only an index over the records, but a team's shared leaderboard should not have to be
    dropped for a new nullable or defaulted column; the next ingest fills it in. A concurrent process adding
    the same column first is tolerated.
    """
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from sqlalchemy.schema import CreateColumn

    have = inspect(bind)
    for table in Base.metadata.sorted_tables:
        if not have.has_table(table.name):
            continue
        present = {c["name"] for c in have.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = CreateColumn(column).compile(dialect=bind.dialect)
            sql = f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}'
            if not isinstance(bind, Engine):  # a connection inside the caller's (locked) transaction
                bind.exec_driver_sql(sql)
                continue
            try:
                with bind.begin() as conn:
                    conn.exec_driver_sql(sql)
            except (OperationalError, ProgrammingError) as e:
                if "duplicate" not in str(e).lower() and "already exists" not in str(e).lower():
                    raise
