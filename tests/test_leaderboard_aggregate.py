"""Aggregation over seeds: mean ± std, median, n, an honest interval (t under 5 seeds, bootstrap from 5), shared
ranks and the cross-task summary; nothing silently dropped."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from leaderboard.aggregate import (Group, RunRow, Summary, bootstrap_ci, cross_task_summary, fmt_interval, fmt_summary,
                                   load_groups, parse_sizes, shared_ranks, status_note, summarize, t_interval)
from leaderboard.ingest import ingest
from leaderboard.store import engine_for
from leaderboard.synthetic import make_record, write_record


def test_summary_statistics() -> None:
    s = summarize([1.0, 2.0, 3.0, 10.0])
    assert s is not None
    assert (s.n, s.mean, s.median) == (4, 4.0, 2.5)
    assert s.std == pytest.approx(math.sqrt(((3 ** 2) + 2 ** 2 + 1 + 36) / 3))
    # 4 seeds: Student t with 3 df, t_0.975 = 3.182446305284263 (any t table), half-width t·s/√n
    half = 3.182446305284263 * s.std / 2
    assert s.interval == "t"
    assert (s.ci_low, s.ci_high) == (pytest.approx(4.0 - half, abs=1e-9), pytest.approx(4.0 + half, abs=1e-9))
    assert fmt_summary(s) == "4.00 ± 4.08 (n=4)"
    assert fmt_interval(s) == "[-2.50, 10.50] t, n=4"


def test_two_seeds_get_a_t_interval_not_their_range() -> None:
    """The issue's case: lora on bit-xor, 89.40 and 92.20, was shown as the '95% CI' [89.40, 92.20]."""
    s = summarize([89.4, 92.2])
    assert s is not None and s.interval == "t"
    half = 12.706204736174707 * math.sqrt(((89.4 - 90.8) ** 2 + (92.2 - 90.8) ** 2) / 1) / math.sqrt(2)
    assert s.ci_low == pytest.approx(90.8 - half, abs=1e-9) and s.ci_high == pytest.approx(90.8 + half, abs=1e-9)
    assert fmt_interval(s) == "[73.01, 108.59] t, n=2"
    with pytest.raises(ValueError):
        t_interval([1.0])


def test_an_interval_never_leaves_its_metrics_range() -> None:
    """Accuracy cannot exceed 100: the two-seed interval above is cut there; a loss keeps its interval."""
    from leaderboard.aggregate import metric_range, summarize_group

    s = summarize([89.4, 92.2], bounds=(0.0, 100.0))
    assert s is not None and s.ci_high == 100.0 and s.ci_low == summarize([89.4, 92.2]).ci_low  # type: ignore[union-attr]
    assert fmt_interval(s) == "[73.01, 100.00] t, n=2"
    low = summarize([0.5, 3.0], bounds=(0.0, 100.0))
    assert low is not None and low.ci_low == 0.0 and low.ci_high < 100.0
    g = _g("t", "m", [])
    g.runs = [RunRow(id=i, seed=i, status="ok", trainable=1, trainable_pct=1.0, wall_time_s=1.0, peak_memory_mb=1.0,
                     diverged_at_step=None, pre_divergence=None, metrics={"accuracy": a, "loss": l})
              for i, (a, l) in enumerate([(89.4, 99.0), (92.2, 101.0)])]
    summarize_group(g)
    assert g.metrics["accuracy"].ci_high == 100.0
    assert g.metrics["loss"].ci_high == pytest.approx(100.0 + 12.706204736174707)  # (not a bounded score)
    assert metric_range("rouge2") == metric_range("bleu_tokenized") == (0.0, 100.0) and metric_range("loss") is None


def test_bootstrap_from_five_seeds() -> None:
    xs = [90.1, 91.4, 89.7, 92.0, 90.8]
    s = summarize(xs)
    assert s is not None and s.interval == "bootstrap"
    assert (s.ci_low, s.ci_high) == bootstrap_ci(xs)
    assert fmt_interval(s).endswith("bootstrap, n=5")
    assert summarize(xs[:4]).interval == "t"  # type: ignore[union-attr]


def test_single_seed_and_empty() -> None:
    s = summarize([7.5])
    assert s is not None and s.std is None and (s.ci_low, s.ci_high, s.interval) == (None, None, None)
    assert fmt_summary(s) == "7.50 (n=1)"
    assert fmt_interval(s) == "none (n=1)"
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


def _s(lo: float | None, hi: float | None, mean: float) -> Summary:
    return Summary(n=1 if lo is None else 3, mean=mean, std=None, median=mean, ci_low=lo, ci_high=hi,
                   interval=None if lo is None else "t")


def test_shared_ranks_tie_overlapping_intervals() -> None:
    """Overlapping intervals share a rank; a rank drops by the number of configurations surely better."""
    ranks = shared_ranks({
        "a": _s(88.0, 94.0, 91.0),   # overlaps b and c
        "b": _s(86.0, 95.0, 90.5),
        "c": _s(89.0, 90.0, 89.5),
        "d": _s(70.0, 80.0, 75.0),   # below all three: rank 4
        "e": _s(None, None, 99.0),   # one seed: no interval, not ranked
        "f": None,                   # no score
    })
    assert ranks == {"a": 1, "b": 1, "c": 1, "d": 4, "e": None, "f": None}
    # the smoke grid's case: four methods at 50.00 ± 4.42 were ranked 1-3; identical intervals tie
    same = {m: summarize([46.875, 53.125]) for m in ("fpt", "full", "lora", "mam")}
    assert set(shared_ranks(same).values()) == {1}
    # touching is overlap; only a strict gap separates
    assert shared_ranks({"x": _s(1.0, 2.0, 1.5), "y": _s(2.0, 3.0, 2.5)}) == {"x": 1, "y": 1}
    assert shared_ranks({"x": _s(1.0, 2.0, 1.5), "y": _s(2.01, 3.0, 2.5)}) == {"x": 2, "y": 1}


def _g(task: str, method: str, values: list[float]) -> Group:
    g = Group(task, method, "default", "tiny", "accuracy")
    g.runs = [RunRow(id=i, seed=i, status="ok", trainable=1, trainable_pct=1.0, wall_time_s=1.0, peak_memory_mb=1.0,
                     diverged_at_step=None, pre_divergence=None, metrics={"accuracy": v}) for i, v in enumerate(values)]
    g.metrics = {"accuracy": summarize(values)}  # type: ignore[dict-item]
    return g


def test_cross_task_summary_win_rate_rank_and_coverage() -> None:
    groups = [_g("t1", "a", [90.0, 91.0]), _g("t1", "b", [50.0, 51.0]), _g("t1", "c", [90.5, 90.5]),
              _g("t2", "a", [60.0, 61.0]), _g("t2", "b", [80.0, 81.0])]
    rows = {c.method: c for c in cross_task_summary(groups)}
    # t1: a (mean 90.5) beats b and ties c (90.5): 1.5 of 2; t2: a loses to b: 0 of 1 → (0.75 + 0) / 2
    assert rows["a"].win_rate == pytest.approx(0.375)
    assert rows["b"].win_rate == pytest.approx((0.0 + 1.0) / 2)
    assert rows["c"].win_rate == pytest.approx(0.75)
    assert (rows["a"].coverage, rows["c"].coverage) == ("2 of 2", "1 of 2")
    # c has zero spread: its t-interval is the point 90.5, inside a's wide interval, so they share rank 1
    assert rows["c"].mean_rank == 1.0 and rows["c"].firsts == 1
    assert rows["a"].tasks_ranked == 2
    assert [c.method for c in cross_task_summary(groups)] == ["c", "b", "a"]
