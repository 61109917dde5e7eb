"""Synthetic run records in the real schema, for tests and the scale benchmark (never for results).

`python -m leaderboard.synthetic OUT --n 10000` writes records; `leaderboard.scale` times ingest and render on them.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from benchmark.record import Record
from benchmark.spec import RunSpec, TaskSettings

EVIL = "<script>alert(1)</script>"  # a method name that must render as text
IA3_HOMEPAGE = "https://example.org/petl-ia3?a=1&b=<2>"  # a real link, with characters to escape
EVIL_HOMEPAGE = "javascript:alert(1)"  # a plugin homepage that must never become a link
PCT = {"default": 0.4, "r8": 0.2, "r16": 0.4, "r64": 1.6, "l30": 0.1, "l200": 3.6, "0.5pct": 0.5}


def make_record(task: str, method: str, budget: str = "default", seed: int = 1, *, backbone: str = "tiny-bert",
                status: str = "ok", value: float | None = 90.0, metric: str = "accuracy",
                source: str = "petl-bench 0.1.0", extra_metrics: dict[str, float] | None = None,
                wall_time_s: float = 12.0, peak_memory_mb: float = 500.0, trainable_pct: float | None = None,
                steps: int = 100, plugin: bool | None = None, homepage: str | None = None,
                init: str = "pretrained", options: dict[str, Any] | None = None,
                max_steps: int | None = None, family: str | None = None, overrides: dict[str, Any] | None = None,
                override: bool = False) -> dict[str, Any]:
    """A record as benchmark/train.py writes it; `value` is the headline metric (None for a failed run).

    `plugin` defaults to what benchmark.registry.provenance would say for `source` (a distribution other than
    petl-bench, and not a config-defined method); `init` is the backbone's weights (a baseline's: `random` …), and a
    baseline that swaps the backbone is made by naming that backbone (`lstm`) as `backbone`, as the config resolves it;
    `options` are the task instance's options, `max_steps` the configured training length (default `steps`);
    `family` makes `task` an instance of that task family; `overrides` are a grid block's training settings (another
    configuration, another variant); `override` marks a config method that replaces a built-in's name."""
    key = {"task": task, "method": method, "budget": budget, "seed": seed}
    pct = trainable_pct if trainable_pct is not None else PCT.get(budget, 1.0)
    backbone_n = 1_000_000
    metrics: dict[str, float] = {}
    curve: list[dict[str, Any]] = []
    if value is not None:
        for i, step in enumerate(range(steps // 4, steps + 1, steps // 4), 1):
            curve.append({"step": step, "epoch": i / 4, f"eval_{metric}": value * (0.6 + 0.1 * i),
                          "eval_loss": 1.0 / i})
        if status == "ok":
            metrics = {metric: value, "loss": 0.1, **(extra_metrics or {})}
    package, _, version = source.partition(" ")
    if plugin is None:
        plugin = package not in ("petl-bench", "config")
    method_block = {"name": method, "source": source, "description": f"synthetic {method}", "compose": [],
                    "init": init, "train_all": method == "full", "sizes": {},
                    "package": None if package == "config" else package, "version": version or None,
                    "homepage": homepage, "entry_point": None, "plugin": plugin, "forms": {}}
    # the identity is built the way benchmark.config builds it, so synthetic records have real digests
    spec = RunSpec(task=TaskSettings(name=task, task=family or task, backbone=backbone, backbone_path=None,
                                     data_dir=None, options=dict(options or {}), train={}, version="1"),
                   method={k: v for k, v in method_block.items() if k != "sizes"} | ({"override": True} if override
                                                                                    else {}),
                   method_name=method, budget=budget, seed=seed, overrides=dict(overrides or {}),
                   train={"max_steps": max_steps or steps, "learning_rate": 1e-3, "batch_size": 16,
                          **(overrides or {})})
    return Record(**{
        "key": key, "digest": spec.digest, "variant": spec.variant, "label": spec.label,
        "backbone": spec.trained_backbone, "paper": spec.paper, "status": status,
        "diverged_at_step": steps if status == "diverged" else None,
        "metrics": metrics, "primary_metric": metric, "eval_split": "held-out",
        "config": spec.to_json(),
        "method": method_block,
        "params": {"trainable": int(backbone_n * pct / 100), "total": backbone_n + 1000, "backbone": backbone_n,
                   "trainable_pct": pct, "formula": int(backbone_n * pct / 100), "trainable_tensors": ["x.weight"]},
        "train": {"steps": steps, "train_loss": 0.2, "resumed_from": None},
        "curve": curve, "wall_time_s": wall_time_s, "peak_memory_mb": peak_memory_mb,
        "provenance": {"git_commit": "0" * 40, "git_dirty": False, "packages": {"petl-bench": "0.1.0"},
                       "lock": {"sha256": "ab" * 32, "matches": True, "mismatches": []},
                       "python": "3.11", "torch": "2.13.0+cpu", "cuda": None, "device": "cpu (x86_64)",
                       "threads": 1, "host": "synthetic", "seed": seed, "started": "2026-01-01T00:00:00+00:00",
                       "finished": "2026-01-01T00:01:00+00:00"},
        **({"error": "synthetic failure"} if status == "failed" else {}),
    }).to_json()


def write_record(runs_dir: Path, record: dict[str, Any], log: str | None = None) -> Path:
    k = record["key"]
    path = Path(runs_dir) / k["task"] / k["method"] / k["budget"] / record["variant"] / str(k["seed"]) / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    if log is not None:
        (path.parent / "run.log").write_text(log)
    return path


def demo_board(runs: Path) -> None:
    """A small board: four tasks, several methods and budgets, a plugin, a diverged and a failed run, a method
    whose name is an HTML injection attempt, one configuration in the paper's setup (fpt on GPT-2 at the recipe's
    length: it gets a Δ) and an offline task instance with fewer bits than the paper's, where two methods' intervals overlap."""
    for seed in (1, 2, 3):
        write_record(runs, make_record("bit-xor", "fpt", seed=seed, value=95 + seed, backbone="minilm-l6",
                                       wall_time_s=30 + seed), log=f"step 1\nfinal accuracy {95 + seed}\n")
        for budget, base in (("r8", 80.0), ("r64", 88.0)):
            write_record(runs, make_record("bit-xor", "lora", budget, seed, value=base + seed, backbone="minilm-l6",
                                           wall_time_s=20.0 + seed))
        write_record(runs, make_record("sst2", "lora", "0.5pct", seed, value=85 + seed, backbone="minilm-l6"))
    write_record(runs, make_record("bit-xor", "ia3", seed=1, value=70.0, backbone="minilm-l6",
                                   source="petl-ia3 0.2.0", homepage=IA3_HOMEPAGE))
    write_record(runs, make_record("bit-xor", EVIL, seed=1, value=60.0, backbone="minilm-l6",
                                   source=f"evil {EVIL}", homepage=EVIL_HOMEPAGE))
    write_record(runs, make_record("bit-xor", "full", seed=1, status="diverged", value=50.0, backbone="minilm-l6"))
    write_record(runs, make_record("bit-xor", "full", seed=2, status="failed", value=None, backbone="minilm-l6"))
    for seed in (1, 2):
        write_record(runs, make_record("listops", "fpt", seed=seed, value=37.0 + seed, backbone="gpt2",
                                       max_steps=20000, wall_time_s=300.0 + seed))
        write_record(runs, make_record("bit-memory", "fpt", seed=seed, value=80.0 + seed, backbone="minilm-l6",
                                       options={"n_bits": 20, "token_dim": 10}))
        write_record(runs, make_record("bit-memory", "lora", "0.5pct", seed, value=79.5 + 2 * seed,
                                       backbone="minilm-l6", options={"n_bits": 20, "token_dim": 10}))


def write_grid(runs_dir: Path, n: int, *, tasks: int = 5, seeds: int = 5, rng_seed: int = 0) -> list[Path]:
    """`n` records over `tasks` tasks × methods × budgets × `seeds` seeds, a few diverged or failed."""
    rng = random.Random(rng_seed)
    per_task = max(1, n // tasks)
    configs = max(1, per_task // seeds)
    budgets = list(PCT)
    paths: list[Path] = []
    for t in range(tasks):
        task = ["bit-xor", "sst2", "mnli", "listops", "cifar10", "mnist", "bit-memory"][t % 7] + (
            f"-{t // 7}" if t >= 7 else "")
        for c in range(configs):
            method, budget = f"method-{c // len(budgets)}", budgets[c % len(budgets)]
            base = rng.uniform(50, 95)
            for seed in range(1, seeds + 1):
                if len(paths) >= n:
                    return paths
                status = rng.choices(["ok", "diverged", "failed"], [0.94, 0.04, 0.02])[0]
                value = None if status == "failed" else round(base + rng.gauss(0, 1), 2)
                rec = make_record(task, method, budget, seed, status=status, value=value,
                                  wall_time_s=rng.uniform(5, 500), peak_memory_mb=rng.uniform(300, 9000),
                                  trainable_pct=PCT[budget] * rng.uniform(0.9, 1.1))
                paths.append(write_record(runs_dir, rec, log=f"step 1\nstep 2\nfinished seed {seed}\n"))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--tasks", type=int, default=5)
    args = ap.parse_args()
    print(len(write_grid(args.out, args.n, tasks=args.tasks)), "records written to", args.out)


if __name__ == "__main__":
    main()
