"""`petl-bench`: the command line that Snakemake rules call and researchers use by hand."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

from benchmark.errors import ConfigError
from benchmark.record import RecordError

log = logging.getLogger("petl_bench")


def _scalar(text: str) -> Any:
    """A --set value: numbers as Python reads them (so 1e-4 is a float, which YAML 1.1 leaves as text), else YAML."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def _run_config(args: argparse.Namespace) -> dict[str, Any]:
    """A one-run config: the --config file (if any) plus this run's grid block and command-line overrides."""
    raw: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"--config: file {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
    raw.setdefault("tasks", {})
    task = dict(raw["tasks"].get(args.task, {}))
    if args.backbone:
        task["backbone"] = args.backbone
    if args.data_dir:
        task["data_dir"] = args.data_dir
    train = dict(task.get("train", {}))
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set max_steps=200")
        train[key] = _scalar(value)
    if train:
        task["train"] = train
    if task:
        raw["tasks"][args.task] = task
    raw["threads"] = args.threads
    raw["grid"] = [{"tasks": [args.task], "methods": [args.method], "budgets": [args.budget], "seeds": [args.seed]}]
    return raw


def cmd_train(args: argparse.Namespace) -> int:
    from benchmark.config import Run, load_config
    from benchmark.record import now, write_failure
    from benchmark.train import setup_logging, train_run

    if args.spec:
        spec = json.loads(args.spec)
    else:
        if args.seed < 0:
            raise ConfigError(f"--seed: {args.seed} is not a non-negative integer")
        cfg = load_config(_run_config(args))
        spec = cfg.spec(Run(args.task, args.method, args.budget, args.seed))
    out = Path(args.out)
    setup_logging(Path(args.log) if args.log else out / "run.log")
    if args.gpu_ids:
        from benchmark.devices import claim_gpu

        gpu = claim_gpu(args.gpu_ids.split(","), Path(args.resources) / "gpu-locks")
        log.info("claimed GPU %s (CUDA_VISIBLE_DEVICES)", gpu)
    data = Path(args.data) if args.data else None
    if data is None and spec["task"].get("data_dir") and not args.spec:
        data = _prepare(spec["task"], Path(args.resources) / "data" / spec["task"]["name"])
    started = now()
    try:
        record = train_run(spec, out, data_path=data, force=args.force)
    except FileExistsError:
        raise
    except Exception as e:
        trace = traceback.format_exc()
        log.error("run %s failed:\n%s", out, trace)
        write_failure(spec, out, e, trace, started)
        raise
    print(json.dumps({"status": record["status"], "metrics": record["metrics"],
                      "trainable_pct": round(record["params"]["trainable_pct"], 4)}))
    return 0


def _prepare(settings: dict[str, Any], out: Path) -> Path:
    from benchmark import registry

    registry.get_task(settings["task"]).prepare(settings, out)
    return out


def cmd_data(args: argparse.Namespace) -> int:
    from benchmark.config import load_config

    spec = json.loads(args.spec) if args.spec else load_config(_run_config(args)).task_settings(args.task)
    _prepare(spec, Path(args.out))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from benchmark import registry

    for name, m in sorted(registry.methods().items()):
        coords = "; ".join(x.label() for x in m.mods) or ("all tensors" if m.train_all else "head only")
        init = "" if m.init == "pretrained" else f" [init: {m.init}]"
        print(f"{name:20s} {coords}{init}  ({m.source})")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    """Trainable counts of a method on a backbone, built on the meta device (no weights, no network)."""
    from benchmark import registry
    from benchmark.methods.params import format_report, param_report
    from benchmark.methods.space import method_from_dict

    extra = {}
    if args.config:
        raw = yaml.safe_load(Path(args.config).read_text()) or {}
        extra = {n: method_from_dict(n, m) for n, m in (raw.get("methods") or {}).items()}
    report = param_report(args.backbone, registry.get_method(args.method, extra), args.budget, args.head)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed methods, forms and tasks with their packages; `check [NAME]` runs the method contract."""
    from benchmark import plugins, registry
    from benchmark.methods import contract

    if getattr(args, "action", None) == "check-task":
        from benchmark.tasks.contract import check_task

        reports = [check_task(n) for n in ([args.name] if args.name else sorted(registry.tasks()))]
        print("\n\n".join(r.format() for r in reports))
        return 0 if all(r.ok for r in reports) else 1
    if getattr(args, "action", None) != "check":
        print(plugins.list_plugins())
        return 0
    extra = {}
    if args.config:
        from benchmark.methods.space import method_from_dict

        registry.load_plugins()  # a config method may compose a plugin's form
        raw = yaml.safe_load(Path(args.config).read_text()) or {}
        extra = {n: method_from_dict(n, m) for n, m in (raw.get("methods") or {}).items()}
    names = [args.name] if args.name else sorted({**registry.methods(), **extra, **registry.broken_methods()})
    reports = [contract.check_method(n, tuple(args.backbone or contract.BACKBONES), extra) for n in names]
    print("\n\n".join(r.format() for r in reports))
    if len(reports) > 1:
        bad = [r.method for r in reports if not r.ok]
        print(f"\n{len(reports) - len(bad)} of {len(reports)} methods hold the contract"
              + (f"; violations: {', '.join(bad)}" if bad else ""))
    return 0 if all(r.ok for r in reports) else 1


def cmd_ingest(args: argparse.Namespace) -> int:
    from leaderboard.ingest import ingest

    n = ingest(Path(args.runs), args.db_url or f"sqlite:///{args.db}")
    print(f"ingested {n} records into {args.db_url or args.db}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from leaderboard.site import render_site

    index = render_site(args.db_url or f"sqlite:///{args.db}", Path(args.out),
                        planned=Path(args.planned) if args.planned else None, perf_dir=Path(args.perf))
    print(f"leaderboard written to {index}")
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    """Step time, throughput and peak memory of each method, as ratios to full fine-tuning and to peft."""
    from benchmark.perf import cases as perf_cases
    from benchmark.perf.run import format_table, run_perf

    backbones = perf_cases.parse_list(args.backbones, perf_cases.DEFAULT_BACKBONES)
    peft_on = perf_cases.peft_backbones(args.peft_on, backbones)
    shape = dict(batch=args.batch, seq=args.seq, steps=args.steps, warmup=args.warmup, threads=args.threads,
                 device=args.device, flops=not args.no_flops)
    methods = perf_cases.parse_list(args.methods, perf_cases.DEFAULT_METHODS)
    plan = perf_cases.plan(backbones, methods, peft_on, bracket=not args.no_bracket, **shape)
    records = run_perf(plan, Path(args.out), rounds=args.rounds, timeout_s=args.case_timeout)
    print(format_table(records))
    print(f"{len(records)} perf records written under {args.out}")
    return 0 if all(r["status"] in ("ok", "unavailable") for r in records) else 1


def cmd_env(args: argparse.Namespace) -> int:
    """Versions and the lock digest: the text to paste into a bug report."""
    from benchmark.environment import report

    print(report())
    return 0


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("petl-bench")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--method", default="fpt")
    p.add_argument("--budget", default="default")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--config", help="a grid config file whose task and method definitions apply")
    p.add_argument("--backbone", help="override the task's backbone")
    p.add_argument("--data-dir", help="a local copy of the task's data (Hub schema)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="training override, e.g. max_steps=200")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resources", default="resources")
    p.add_argument("--spec", help=argparse.SUPPRESS)  # the resolved spec, as JSON (used by the Snakefile)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="petl-bench", description=__doc__)
    ap.add_argument("--version", action="version", version=f"petl-bench {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("env", help="versions of Python, torch, CUDA, transformers, peft, snakemake and the lock digest "
                                   "(paste into a bug report)")
    p.set_defaults(fn=cmd_env)

    p = sub.add_parser("train", help="train one (task, method, budget, seed) and write its record.json")
    _run_args(p)
    p.add_argument("--out", required=True, help="the run folder (record.json, run.log, checkpoint/)")
    p.add_argument("--data", help="the task's prepared data folder (default: prepared under --resources)")
    p.add_argument("--log", help="log file (default: OUT/run.log)")
    p.add_argument("--force", action="store_true", help="replace an existing record.json")
    p.add_argument("--gpu-ids", help="comma-separated GPU ids shared by concurrent jobs; this job claims a free one")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("data", help="fetch or copy a task's data into a local folder")
    _run_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_data)

    p = sub.add_parser("methods", help="list every method with its coordinates in the design space")
    p.set_defaults(fn=cmd_methods)

    p = sub.add_parser("params", help="trainable parameter counts of a method on a backbone (meta device)")
    p.add_argument("--backbone", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--budget", default="default", help="default, sizes like l30-r512, or a share like 0.5pct")
    p.add_argument("--head", default="base", choices=["base", "seq-cls", "seq2seq"], help="task head to build")
    p.add_argument("--config", help="a config file whose methods: block defines more methods")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(fn=cmd_params)

    p = sub.add_parser("perf", help="step time, throughput and peak memory of methods vs full fine-tuning and peft")
    p.add_argument("--backbones", help="comma-separated (default: roberta-base,bart-large,mbart-large-cc25,gpt2; "
                                       "tiny-* and minilm-l6 for CPU)")
    p.add_argument("--methods", help="comma-separated (default: He et al.'s presets); full always runs first")
    p.add_argument("--peft-on", help="backbones that also get peft's LoRA/prefix/prompt beside ours at the same size "
                                     "(default: roberta-base when measured; 'none' for no peft rows)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128, help="tokens per sequence (seq2seq: source and target each)")
    p.add_argument("--steps", type=int, default=5, help="timed steps; the median is reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first also counts FLOPs)")
    p.add_argument("--rounds", type=int, default=1, help="measure all cases round-robin this many times, pooled")
    p.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:i]")
    p.add_argument("--no-flops", action="store_true", help="skip counting model FLOPs in the first warm-up step")
    p.add_argument("--no-bracket", action="store_true",
                   help="measure full fine-tuning once per backbone (default: first and last, steps pooled)")
    p.add_argument("--case-timeout", type=float, default=3600, help="seconds before a worker is given up")
    p.add_argument("--out", default="results/perf")
    p.set_defaults(fn=cmd_perf)

    p = sub.add_parser("plugins", help="list installed methods, forms and tasks with their source package; "
                                       "`plugins check [NAME]` runs the method contract")
    p.set_defaults(fn=cmd_plugins)
    actions = p.add_subparsers(dest="action")
    check_task = actions.add_parser("check-task", help="run the task contract: fixture, data, two training steps, "
                                                       "evaluation, every metric a paper table asks; non-zero on "
                                                       "violations")
    check_task.add_argument("name", nargs="?", help="a task name; every registered task if omitted")
    check = actions.add_parser(
        "check", help="run the method contract on tiny models of every supported backbone; non-zero on violations")
    check.add_argument("name", nargs="?", help="a method name (installed, or from --config); every method if omitted")
    check.add_argument("--backbone", action="append", help="check only this tiny backbone (repeatable)")
    check.add_argument("--config", help="a config file whose methods: block defines more methods")

    for name, fn, text in (("ingest", cmd_ingest, "index run records into the database"),
                           ("report", cmd_report, "render the static HTML leaderboard")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--db", default="results/bench.sqlite")
        p.add_argument("--db-url", help="any SQLAlchemy URL (overrides --db)")
        if name == "ingest":
            p.add_argument("--runs", default="results/runs")
        else:
            p.add_argument("--out", default="results/leaderboard")
            p.add_argument("--planned", help="JSON list of planned run keys, so the overview can count missing runs")
            p.add_argument("--perf", default="results/perf", help="`petl-bench perf` records for the cost page")
        p.set_defaults(fn=fn)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except (ConfigError, FileExistsError, RecordError) as e:
        print(f"petl-bench {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
