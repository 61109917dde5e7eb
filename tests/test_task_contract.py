"""One contract for every task: each registered task, on a fixture it writes itself, builds its data, trains two
steps on a tiny random backbone, evaluates, and produces every metric a reported paper table asks of it."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from benchmark import registry
from benchmark.tasks import contract

TASKS = sorted(registry.tasks())


@pytest.fixture(autouse=True)
def quiet() -> None:
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_the_matrix_covers_both_papers() -> None:
    assert len(TASKS) == 12
    assert {registry.get_task(t).paper for t in TASKS} == {"he2022", "lu2021"}


@pytest.mark.parametrize("name", TASKS)
def test_every_task_holds_the_contract(name: str, tmp_path: Path) -> None:
    report = contract.check_task(name, tmp_path)
    assert report.ok, report.format()
    assert set(report.required) <= set(report.metrics)


def test_every_reported_column_names_a_registered_task() -> None:
    from leaderboard.papers import load_tables

    asked = {c.task for t in load_tables() for c in t.columns}
    assert asked <= set(TASKS), sorted(asked - set(TASKS))


def test_a_metric_no_code_produces_is_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the contract caught: Lu et al.'s convergence table asked every FPT task for `steps_to_converge`, which
    no task produced until FPTTask.evaluate did; a table asking for a metric nobody writes fails the same way."""
    monkeypatch.setattr(contract, "reported_metrics", lambda task: {"accuracy", "steps_to_converge", "auroc"})
    report = contract.check_task("bit-xor", tmp_path)
    assert [rule for rule, _ in report.violations] == ["metrics"]
    assert "no finite value for ['auroc']" in report.violations[0][1]
    assert "steps_to_converge" in report.metrics


def test_a_task_without_smoke_settings_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    task = registry.get_task("sst2")
    monkeypatch.setattr(type(task), "smoke", {})
    report = contract.check_task("sst2")
    assert report.violations == [("smoke", "the task declares no `smoke` settings (tiny backbone, small options)")]


def test_cli_runs_the_task_contract(capsys: pytest.CaptureFixture) -> None:
    from benchmark.cli import main

    assert main(["plugins", "check-task", "listops"]) == 0
    assert "listops: contract holds" in capsys.readouterr().out
