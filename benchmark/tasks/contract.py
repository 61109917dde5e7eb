"""The task contract: every registered task, on a fixture it writes itself, builds its data, trains two steps on a
tiny random backbone, evaluates, and produces every metric that a reported paper table asks of it — so a table
cell can never ask for a metric no code produces, and a new task is checked the day it is added.

Rules, each violation naming its rule and task:
- smoke      the task declares `smoke` settings (a tiny backbone and small options) that validate;
- fixture    a task that reads prepared data writes a local copy in its schema (`fixture`), which `check` accepts
             and `prepare` copies;
- train      two optimiser steps run and the run record says `ok` at step 2;
- metrics    the record holds the task's primary, paper and extra metrics and every metric of a reported table
             column for this task (leaderboard/reported/*.yaml), each a finite number.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark import registry
from benchmark.tasks.base import Task

if TYPE_CHECKING:
    from benchmark.spec import RunSpec

RULES = ("smoke", "fixture", "train", "metrics")
METHOD = "full"  # every backbone and task head trains under it, so the contract tests the task alone


@dataclass
class TaskReport:
    task: str
    origin: str
    required: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    violations: list[tuple[str, str]] = field(default_factory=list)  # (rule, message)

    @property
    def ok(self) -> bool:
        return not self.violations

    def format(self) -> str:
        lines = [f"task {self.task} ({self.origin}); rules: {', '.join(RULES)}",
                 f"  required metrics: {', '.join(self.required) or 'none'}",
                 "  produced: " + (", ".join(f"{k}={v:.4g}" for k, v in sorted(self.metrics.items())) or "nothing")]
        lines += [f"  VIOLATION {rule} [{self.origin}]: {message}" for rule, message in self.violations]
        lines.append(f"{self.task}: " + ("contract holds" if self.ok else f"{len(self.violations)} violation(s)"))
        return "\n".join(lines)


def reported_metrics(task: str) -> set[str]:
    """The metrics that the papers' reported tables ask of `task` (one per table column naming it)."""
    from leaderboard.papers import load_tables

    return {c.metric for t in load_tables() for c in t.columns if c.task == task}


def required_metrics(task: Task) -> list[str]:
    own = {task.metric, task.paper_metric or task.metric, *task.extra_metrics}
    return sorted(own | reported_metrics(task.name))


def _spec(task: Task, source: Path | None) -> "RunSpec":
    from benchmark.config import Run, load_config

    settings = {k: v for k, v in task.smoke.items()}
    if source is not None:
        settings["data_dir"] = str(source)
    cfg = load_config({"tasks": {task.name: settings},
                       "grid": [{"tasks": [task.name], "methods": [METHOD], "budgets": ["default"]}]})
    return cfg.spec(Run(task.name, METHOD, "default", 1))


def check_task(task: str | Task, workdir: Path | None = None) -> TaskReport:
    """Run the task contract for a registered task (by name) or a Task instance not yet registered (a task
    being written), in `workdir` (a temporary folder when None)."""
    if workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return check_task(task, Path(tmp))
    if isinstance(task, str):
        task = registry.get_task(task)
    with registry.trying_task(task):
        return _check(task, workdir)


def _check(task: Task, workdir: Path) -> TaskReport:
    name = task.name
    report = TaskReport(name, str(registry.task_origin(name) or "unregistered"), required_metrics(task))
    if not task.smoke:
        report.violations.append(("smoke", "the task declares no `smoke` settings (tiny backbone, small options)"))
        return report
    try:
        source = task.fixture(workdir / "fixture")
    except Exception as e:
        report.violations.append(("fixture", f"writing the fixture raised {type(e).__name__}: {e}"))
        return report
    if task.needs_data and source is None:
        report.violations.append(("fixture", "the task reads prepared data but its fixture wrote nothing"))
        return report
    try:
        spec = _spec(task, source)
    except Exception as e:
        report.violations.append(("smoke", f"the smoke settings do not validate: {type(e).__name__}: {e}"))
        return report
    data = None
    if task.needs_data:
        data = workdir / "data"
        try:
            task.prepare(spec.task, data)
        except Exception as e:
            report.violations.append(("fixture", f"prepare from the fixture raised {type(e).__name__}: {e}"))
            return report
    from benchmark.train import train_run

    spec = spec.with_(train={**spec.train, "max_steps": 2})
    try:
        record = train_run(spec, workdir / "run", data_path=data)
    except Exception as e:
        report.violations.append(("train", f"training two steps raised {type(e).__name__}: {e}"))
        return report
    report.metrics = {k: v for k, v in record["metrics"].items() if isinstance(v, (int, float))}
    if record["status"] != "ok":
        report.violations.append(("train", f"the run ended {record['status']!r}"))
    missing = [m for m in report.required if not (isinstance(report.metrics.get(m), (int, float))
                                                  and math.isfinite(report.metrics[m]))]
    if missing:
        report.violations.append(("metrics", f"no finite value for {missing} (produced: "
                                             f"{', '.join(sorted(report.metrics)) or 'nothing'})"))
    return report
