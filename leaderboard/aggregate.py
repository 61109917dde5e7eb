"""Seeds → one cell: mean ± std, median, n and a 95% interval of the mean, with diverged and failed runs counted.

A group is one configuration: (task, method, budget, backbone, variant), where the variant is the digest of the
resolved spec without the seed, so only seeds of the same configuration are pooled (never two learning rates, or a
config method that reuses a built-in's name, under one name). Statistics use the runs that finished (`ok`);
diverged and failed runs stay in the group's counts so a table can say so instead of quietly reporting the survivors.

The interval is Student's t under `MIN_BOOTSTRAP` seeds (a bootstrap of 2-4 values is just their range, far too
narrow) and a percentile bootstrap from there on; one seed has no interval. Ranks are shared: a configuration's
rank is 1 + the number of configurations whose whole interval lies above its own, so configurations whose
intervals overlap are not put in an order the seeds cannot support. An interval never leaves its metric's range:
a t-interval of two accuracies of 89.4 and 92.2 reaches 108.6, which no run can score, so it is cut at 100.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaderboard.store import Method, Metric, Run, Task

BOOTSTRAP_SEED = 20220125
N_BOOT = 2000
MIN_BOOTSTRAP = 5  # fewer finished seeds than this: a t-interval instead of the bootstrap
CONFIDENCE = 0.95
# Scores on a 0-100 scale: every built-in task's metrics (accuracy, ROUGE and BLEU, all × 100). A metric not named
# here (a loss, a plugin's own score) keeps its interval as computed.
PERCENT_METRICS = frozenset({"accuracy", "accuracy_mm", "bleu", "bleu_tokenized", "rouge1", "rouge2", "rougeL",
                             "rougeLsum"})
RANK_TEST = ("shared ranks: a configuration is ranked below another only when their 95% intervals of the mean "
             "do not overlap (Student-t interval under 5 seeds, percentile bootstrap from 5); one seed is not ranked")


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float | None  # sample std (ddof=1); None with one seed
    median: float
    ci_low: float | None  # 95% interval of the mean; None with one seed
    ci_high: float | None
    interval: str | None = None  # "t" or "bootstrap": how ci_low/ci_high were made

    def value(self, statistic: str = "mean") -> float:
        return self.median if statistic == "median" else self.mean


def t_interval(values: Sequence[float], *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean (n − 1 degrees of freedom): honest about how little 2-4 seeds say."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError("a t-interval needs at least two values")
    half = float(t.ppf((1 + confidence) / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return float(x.mean()) - half, float(x.mean()) + half


def bootstrap_ci(values: Sequence[float], *, confidence: float = 0.95, n_boot: int = N_BOOT,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; a fixed RNG seed makes reports byte-for-byte reproducible."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap of no values")
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def metric_range(name: str) -> tuple[float, float] | None:
    """The values a metric can take, where they are known (see PERCENT_METRICS)."""
    return (0.0, 100.0) if name in PERCENT_METRICS else None


def summarize(values: Iterable[float], *, bounds: tuple[float, float] | None = None,
              **bootstrap: float) -> Summary | None:
    """Summary of the finite values, or None when there are none; the interval is cut to `bounds`."""
    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not x:
        return None
    arr = np.asarray(x)
    lo: float | None
    hi: float | None
    if len(x) == 1:
        lo = hi = kind = None
    elif len(x) < MIN_BOOTSTRAP:
        (lo, hi), kind = t_interval(x), "t"
    else:
        (lo, hi), kind = bootstrap_ci(x, **bootstrap), "bootstrap"  # type: ignore[arg-type]
    if bounds is not None and lo is not None and hi is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Summary(n=len(x), mean=float(arr.mean()), std=float(arr.std(ddof=1)) if len(x) > 1 else None,
                   median=float(np.median(arr)), ci_low=lo, ci_high=hi, interval=kind)


def fmt_interval(s: Summary | None, digits: int = 2) -> str:
    """'[88.1, 93.5] t, n=2' or '[90.0, 91.2] bootstrap, n=6'; one seed says so instead of inventing a range."""
    if s is None:
        return "—"
    if s.ci_low is None or s.ci_high is None:
        return f"none (n={s.n})"
    return f"[{fmt(s.ci_low, digits)}, {fmt(s.ci_high, digits)}] {s.interval}, n={s.n}"


def shared_ranks(summaries: dict[Any, Summary | None]) -> dict[Any, int | None]:
    """Rank = 1 + how many others are surely better (their interval's low end above this one's high end).

    Ties are shared, so four configurations whose intervals overlap all rank 1; a configuration with one seed (no
    interval) or no score is not ranked (None). See RANK_TEST for the sentence a page shows."""
    ranked = {k: s for k, s in summaries.items() if s is not None and s.ci_low is not None and s.ci_high is not None}
    out: dict[Any, int | None] = {k: None for k in summaries}
    for k, s in ranked.items():
        out[k] = 1 + sum(o.ci_low > s.ci_high for j, o in ranked.items() if j != k)  # type: ignore[operator]
    return out


@dataclass
class RunRow:
    """The columns of one run that tables and pages need (no config or curve: those stay in the database)."""
    id: int
    seed: int
    status: str
    trainable: int | None
    trainable_pct: float | None
    wall_time_s: float | None
    peak_memory_mb: float | None
    diverged_at_step: int | None
    pre_divergence: float | None
    metrics: dict[str, float | None]
    sizes: dict[str, int] | None = None
    formula: int | None = None  # the paper formula's count, the one budgets are solved with
    backbone_params: int | None = None
    config: dict[str, Any] | None = None  # the resolved spec: task options, backbone, training length

    @property
    def formula_pct(self) -> float | None:
        if self.formula is None or not self.backbone_params:
            return None
        return 100 * self.formula / self.backbone_params


SIZES = re.compile(r"^[a-z]+\d+(?:-[a-z]+\d+)*$")


def parse_sizes(budget: str) -> dict[str, int] | None:
    """'l30-r512' → {'l': 30, 'r': 512}; None for 'default' or a share like '0.5pct'."""
    if not SIZES.match(budget):
        return None
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"([a-z]+)(\d+)", budget)}


@dataclass
class Group:
    task: str
    method: str
    budget: str
    backbone: str
    primary: str | None
    source: str | None = None
    plugin: bool = False
    homepage: str | None = None
    runs: list[RunRow] = field(default_factory=list)
    metrics: dict[str, Summary] = field(default_factory=dict)
    pre_divergence: Summary | None = None
    variant: str = ""
    label: str = ""  # readable name of the configuration (the method, plus its grid block's overrides)
    paper_task: str = ""  # the paper cell it answers (explicit fields, never the instance's name)
    paper_backbone: str = ""
    override: bool = False  # a config method replacing a built-in of the same name: never a paper cell

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return self.task, self.method, self.budget, self.backbone, self.variant

    @property
    def sizes(self) -> dict[str, int] | None:
        return next((r.sizes for r in self.runs if r.sizes), None)

    def answers(self, budget: str) -> bool:
        """Whether this group ran `budget`: the same name, or (for a size budget such as 'l200') a budget whose
        resolved sizes are those, e.g. 'default' for a preset whose paper size is l=200."""
        if budget == self.budget:
            return True
        wanted, have = parse_sizes(budget), self.sizes
        return bool(wanted and have) and all(have.get(k) == v for k, v in wanted.items())  # type: ignore[union-attr]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def n_ok(self) -> int:
        return self.count("ok")

    @property
    def n_diverged(self) -> int:
        return self.count("diverged")

    @property
    def n_failed(self) -> int:
        return self.count("failed")

    @property
    def headline(self) -> Summary | None:
        return self.metrics.get(self.primary) if self.primary else None

    def _mean(self, attr: str) -> float | None:
        xs = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return sum(xs) / len(xs) if xs else None

    @property
    def trainable_pct(self) -> float | None:
        return self._mean("trainable_pct")

    @property
    def trainable(self) -> float | None:
        return self._mean("trainable")

    @property
    def formula_pct(self) -> float | None:
        """Paper-formula parameters as % of the backbone: the count the budget was solved with."""
        return self._mean("formula_pct")

    @property
    def formula(self) -> float | None:
        return self._mean("formula")

    def first_ok_seed(self) -> RunRow | None:
        return next((r for r in self.runs if r.status == "ok"), self.runs[0] if self.runs else None)

    @property
    def wall_time_s(self) -> float | None:
        return self._mean("wall_time_s")

    @property
    def peak_memory_mb(self) -> float | None:
        return self._mean("peak_memory_mb")


def summarize_group(g: Group) -> Group:
    ok = [r for r in g.runs if r.status == "ok"]
    names = sorted({k for r in ok for k in r.metrics})
    g.metrics = {k: s for k in names if (s := summarize((r.metrics.get(k) for r in ok), bounds=metric_range(k))) is not None}
    g.pre_divergence = summarize(r.pre_divergence for r in g.runs if r.status == "diverged")
    return g


def load_groups(s: Session) -> list[Group]:
    """Every (task, method, budget, backbone) group in the database with its seeds summarised."""
    primaries = {t.name: t.primary_metric for t in s.scalars(select(Task))}
    sources = {m.name: (m.source, bool(m.plugin), m.homepage) for m in s.scalars(select(Method))}
    metrics: dict[int, dict[str, float | None]] = defaultdict(dict)
    for run_id, name, value in s.execute(select(Metric.run_id, Metric.name, Metric.value)):
        metrics[run_id][name] = value
    cols = (Run.id, Run.task, Run.method, Run.budget, Run.backbone, Run.variant, Run.seed, Run.status,
            Run.trainable, Run.trainable_pct, Run.wall_time_s, Run.peak_memory_mb, Run.diverged_at_step,
            Run.pre_divergence, Run.primary_metric, Run.sizes, Run.formula, Run.backbone_params, Run.config,
            Run.label, Run.paper_task, Run.paper_backbone, Run.override)
    groups: dict[tuple[str, str, str, str, str], Group] = {}
    order = (Run.task, Run.method, Run.budget, Run.backbone, Run.variant, Run.seed)
    for row in s.execute(select(*cols).order_by(*order)):
        key = (row.task, row.method, row.budget, row.backbone, row.variant)
        g = groups.get(key)
        if g is None:
            source, plugin, homepage = sources.get(row.method, (None, False, None))
            g = groups[key] = Group(row.task, row.method, row.budget, row.backbone,
                                    primary=primaries.get(row.task) or row.primary_metric, source=source,
                                    plugin=plugin, homepage=homepage, variant=row.variant, label=row.label,
                                    paper_task=row.paper_task, paper_backbone=row.paper_backbone,
                                    override=bool(row.override))
        g.runs.append(RunRow(id=row.id, seed=row.seed, status=row.status, trainable=row.trainable,
                             trainable_pct=row.trainable_pct, wall_time_s=row.wall_time_s,
                             peak_memory_mb=row.peak_memory_mb, diverged_at_step=row.diverged_at_step,
                             pre_divergence=row.pre_divergence, metrics=metrics.get(row.id, {}),
                             sizes=row.sizes if isinstance(row.sizes, dict) else None, formula=row.formula,
                             backbone_params=row.backbone_params,
                             config=row.config if isinstance(row.config, dict) else None))
    return [summarize_group(g) for g in groups.values()]


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000 and float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def fmt_summary(s: Summary | None, digits: int = 2, statistic: str = "mean") -> str:
    """'98.40 ± 0.50 (n=5)'; the spread is the sample std; one seed shows no spread."""
    if s is None:
        return "—"
    spread = f" ± {s.std:.{digits}f}" if s.std is not None else ""
    return f"{fmt(s.value(statistic), digits)}{spread} (n={s.n})"


def status_note(g: Group) -> str:
    """What happened to the seeds that did not finish: '2 diverged†, 1 failed'."""
    parts = []
    if g.n_diverged:
        parts.append(f"{g.n_diverged} diverged†")
    if g.n_failed:
        parts.append(f"{g.n_failed} failed")
    return ", ".join(parts)


@dataclass
class CrossTask:
    """One (method, budget) over every task it ran, HELM-style: mean win rate, mean shared rank, coverage."""
    method: str
    budget: str
    tasks_scored: int  # tasks with a finished score
    tasks_total: int  # tasks in the database
    win_rate: float | None  # mean over scored tasks of the share of other configurations with a lower mean
    mean_rank: float | None  # mean shared rank over the tasks where it was ranked (two or more seeds)
    tasks_ranked: int
    firsts: int  # tasks where its shared rank is 1

    @property
    def coverage(self) -> str:
        return f"{self.tasks_scored} of {self.tasks_total}"


def cross_task_summary(groups: list[Group]) -> list[CrossTask]:
    """Per (method, budget), over tasks: a win counts each other configuration on the same task with a lower
    mean (a tie counts half), as HELM's mean win rate; ranks are `shared_ranks`. Best win rate first."""
    by_task: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        by_task[g.task].append(g)
    wins: dict[tuple[str, str], list[float]] = defaultdict(list)
    ranks: dict[tuple[str, str], list[int]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    scored_tasks: dict[tuple[str, str], set[str]] = defaultdict(set)
    for task, gs in by_task.items():
        task_ranks = shared_ranks({g.key: g.headline for g in gs})
        scored = [g for g in gs if g.headline is not None]
        for g in gs:
            key = (g.method, g.budget)
            seen.add(key)
            if g.headline is None:
                continue
            scored_tasks[key].add(task)
            others = [o.headline.mean for o in scored if o is not g]  # type: ignore[union-attr]
            if others:
                mine = g.headline.mean
                wins[key].append(sum(1.0 if o < mine else 0.5 if o == mine else 0.0 for o in others) / len(others))
            if task_ranks[g.key] is not None:
                ranks[key].append(task_ranks[g.key])  # type: ignore[arg-type]
    out = [CrossTask(method=m, budget=b, tasks_scored=len(scored_tasks[(m, b)]), tasks_total=len(by_task),
                     win_rate=sum(wins[(m, b)]) / len(wins[(m, b)]) if wins[(m, b)] else None,
                     mean_rank=sum(ranks[(m, b)]) / len(ranks[(m, b)]) if ranks[(m, b)] else None,
                     tasks_ranked=len(ranks[(m, b)]), firsts=sum(r == 1 for r in ranks[(m, b)]))
           for m, b in seen]
    return sorted(out, key=lambda c: (c.win_rate is None, -(c.win_rate or 0), c.method, c.budget))
