"""Aggregation over seeds: mean ± std, median, n, a reproducible bootstrap interval; nothing silently dropped."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from leaderboard.aggregate import Group, RunRow, bootstrap_ci, parse_sizes, fmt_summary, load_groups, status_note, summarize
from leaderboard.ingest import ingest
from leaderboard.store import engine_for
from leaderboard.synthetic import make_record, write_record


def test_summary_statistics() -> None:
    s = summarize([1.0, 2.0, 3.0, 10.0])
    assert s is not None
    assert (s.n, s.mean, s.median) == (4, 4.0, 2.5)
    assert s.std == pytest.approx(math.sqrt(((3 ** 2) + 2 ** 2 + 1 + 36) / 3))
    assert 1.0 <= s.ci_low <= s.mean <= s.ci_high <= 10.0
    assert fmt_summary(s) == "4.00 ± 4.08 (n=4)"


def test_single_seed_and_empty() -> None:
    s = summarize([7.5])
    assert s is not None and s.std is None and (s.ci_low, s.ci_high) == (7.5, 7.5)
    assert fmt_summary(s) == "7.50 (n=1)"
    assert summarize([]) is None
    assert summarize([float("nan"), None]) is None  # type: ignore[list-item]


def test_bootstrap_is_reproducible_and_sensible() -> None:
    xs = [90.1, 91.4, 89.7, 92.0, 90.8]
    assert bootstrap_ci(xs) == bootstrap_ci(xs)
    lo, hi = bootstrap_ci(xs)
    assert min(xs) <= lo < sum(xs) / len(xs) < hi <= max(xs)
    assert bootstrap_ci(xs, seed=1) != bootstrap_ci(xs, seed=2)
    wide = bootstrap_ci(xs, confidence=0.99)
    assert wide[0] <= lo and wide[1] >= hi
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)


def test_groups_keep_diverged_and_failed_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, value in ((1, 90.0), (2, 92.0)):
        write_record(runs, make_record("bit-xor", "fpt", seed=seed, value=value))
    write_record(runs, make_record("bit-xor", "fpt", seed=3, status="diverged", value=50.0))
    write_record(runs, make_record("bit-xor", "fpt", seed=4, status="failed", value=None))
    write_record(runs, make_record("bit-xor", "full", seed=1, status="diverged", value=60.0))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ingest(runs, url)
    with Session(engine_for(url)) as s:
        groups = {g.method: g for g in load_groups(s)}
    fpt = groups["fpt"]
    assert (fpt.n_ok, fpt.n_diverged, fpt.n_failed, len(fpt.runs)) == (2, 1, 1, 4)
    assert fpt.headline is not None and fpt.headline.mean == 91.0 and fpt.headline.n == 2
    assert status_note(fpt) == "1 diverged†, 1 failed"
    full = groups["full"]
    assert full.headline is None
    # synthetic curves end at 1.0 × value: the last evaluation before divergence is kept with †
    assert full.pre_divergence is not None and full.pre_divergence.mean == pytest.approx(60.0)


def test_budget_matching_by_resolved_sizes() -> None:
    assert parse_sizes("l30-r512") == {"l": 30, "r": 512} and parse_sizes("0.5pct") is None
    assert parse_sizes("default") is None
    run = RunRow(id=1, seed=1, status="ok", trainable=1, trainable_pct=1.0, wall_time_s=1.0, peak_memory_mb=1.0,
                 diverged_at_step=None, pre_divergence=None, metrics={}, sizes={"l": 200})
    g = Group("xsum", "prefix", "default", "bart-large", "rouge2", runs=[run])
    assert g.answers("default") and g.answers("l200")
    assert not g.answers("l30") and not g.answers("0.5pct")
