"""`petl-bench`: the command line that Snakemake rules call and researchers use by hand."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from benchmark.errors import ConfigError, disk_full
from benchmark.record import RecordError

if TYPE_CHECKING:  # the command line imports lazily, so that `--help` stays fast
    from benchmark.spec import TaskSettings

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
    if getattr(args, "backbone", None):
        task["backbone"] = args.backbone
    if args.data_dir:
        root = Path(args.data_dir)
        if not root.is_dir():
            raise ConfigError(f"--data-dir: folder {root} does not exist ({DATA_DIR_HELP})")
        raw["data_dir"] = str(root)  # the same meaning as a config's top-level data_dir
    train = dict(task.get("train", {}))
    for item in getattr(args, "set", None) or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set max_steps=200")
        train[key] = _scalar(value)
    if train:
        task["train"] = train
    if task:
        raw["tasks"][args.task] = task
    raw["threads"] = getattr(args, "threads", 1)
    raw["grid"] = [{"tasks": [args.task], "methods": [getattr(args, "method", "fpt")],
                    "budgets": [getattr(args, "budget", "default")], "seeds": [getattr(args, "seed", 1)]}]
    return raw


# Packages that transformers' Trainer imports whenever they are installed, though a run may not use them: peft (the
# harness's methods are its own; only `petl-bench perf` runs peft, as a reference) and, for tasks that make their data
# in-process, datasets. Together they cost every job about 0.6 s of imports.
OPTIONAL_IMPORTS = ("peft", "datasets")


def skip_unused_imports(spec: Any) -> list[str]:
    """Keep transformers from importing what this run never uses, by marking it absent (`sys.modules[name] = None`,
    Python's own way to make an import fail; transformers' `is_*_available()` then say False). Only for runs made of
    built-in parts: a plugin (task or form) may use either package, so with one nothing is hidden. Also never for a
    package imported already, or `datasets` for a task that reads prepared data. Returns the hidden names."""
    from benchmark import registry

    task = registry.get_task(spec.task.task)
    origins = [registry.task_origin(spec.task.task)]
    origins += [registry.form_origin(m["form"]) for m in spec.method.get("compose") or []]
    if not all(o is not None and o.builtin for o in origins):
        return []
    hidden = [n for n in OPTIONAL_IMPORTS if n not in sys.modules and not (n == "datasets" and task.needs_data)]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    return hidden


def cmd_train(args: argparse.Namespace) -> int:
    from benchmark.config import Run, load_config
    from benchmark.spec import RunSpec

    if args.spec:
        spec = RunSpec.from_json(json.loads(args.spec)).with_(threads=args.threads)
    else:
        if args.seed < 0:
            raise ConfigError(f"--seed: {args.seed} is not a non-negative integer")
        cfg = load_config(_run_config(args))
        spec = cfg.spec(Run.of(args.task, args.method, args.budget, args.seed))
    if getattr(args, "lean", False):
        skip_unused_imports(spec)  # before anything imports transformers' Trainer
    from benchmark.record import now, write_failure
    from benchmark.rundir import ForeignCheckpoint, RunLocked
    from benchmark.train import setup_logging, train_run
    out = Path(args.out)
    data = Path(args.data) if args.data else None
    if data is not None and not data.is_dir():
        raise ConfigError(f"--data: folder {data} does not exist (a prepared data folder, as `petl-bench data` "
                          f"writes; or pass --data-dir ROOT to prepare one from a local copy)")
    if data is None and not spec.task.data_dir and _needs_data(spec.task.task):
        raise ConfigError(f"task {spec.task.task!r} reads prepared data: pass --data FOLDER (see "
                          f"`petl-bench data --help`) or --data-dir ROOT ({DATA_DIR_HELP})")
    log_file = Path(args.log) if args.log else out / "run.log"
    setup_logging(log_file)
    if args.gpu_ids:
        from benchmark.devices import claim_gpu

        gpu = claim_gpu(args.gpu_ids.split(","), Path(args.resources) / "gpu-locks")
        log.info("claimed GPU %s (CUDA_VISIBLE_DEVICES)", gpu)
    if data is None and spec.task.data_dir and not args.spec:
        data = _prepare(spec.task, Path(args.resources) / "data" / spec.task.name)
    started = now()
    try:
        record = train_run(spec, out, data_path=data, force=args.force, keep_checkpoints=args.keep_checkpoints)
    except (FileExistsError, RunLocked, ForeignCheckpoint):
        raise
    except Exception as e:
        trace = traceback.format_exc()
        log.error("run %s failed:\n%s", out, trace)
        write_failure(spec.to_json(), out, e, trace, started)
        # one line for the console (under Snakemake, the rule prints this last line of run.log)
        if disk_full(e):
            print(f"petl-bench train: failed: {_no_space(str(out))} (traceback in {log_file})", file=sys.stderr)
            return 1
        print(f"petl-bench train: failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
              f"(traceback in {log_file})", file=sys.stderr)
        return 1
    print(json.dumps({"status": record["status"], "metrics": record["metrics"],
                      "trainable_pct": round(record["params"]["trainable_pct"], 4)}))
    return 0


def _needs_data(family: str) -> bool:
    from benchmark import registry

    return registry.get_task(family).needs_data


def _prepare(settings: TaskSettings, out: Path) -> Path:
    """Prepare a task's data into `out`. A rehearsal's data is the task's own fixture in its Hub schema, written
    here and then prepared like any local copy (so the copy and the checks run too); nothing is downloaded."""
    import dataclasses
    import tempfile

    from benchmark import registry

    task = registry.get_task(settings.task)
    if not settings.rehearsal:
        task.prepare(settings, out)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        fixture = task.fixture(Path(tmp) / "fixture")
        if fixture is None:
            raise ConfigError(f"task {task.name!r} writes no fixture: a rehearsal cannot prepare its data")
        task.prepare(dataclasses.replace(settings, data_dir=str(fixture)), out)
    (out / "REHEARSAL").write_text("fixture data written by the task itself for a rehearsal: not the real dataset\n")
    return out


def cmd_standin(args: argparse.Namespace) -> int:
    """Write a rehearsal stand-in of a backbone (tiny, random, the real architecture's limits) in the Hub layout."""
    from benchmark.backbones.registry import get_backbone
    from benchmark.backbones.standin import VERSION, write_standin

    get_backbone(args.backbone)
    if args.version is not None and args.version != VERSION:
        raise ConfigError(f"--version {args.version}: this installation writes stand-ins of version {VERSION} only")
    write_standin(args.backbone, Path(args.out))
    print(f"wrote the stand-in of {args.backbone} (version {VERSION}) to {args.out}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from benchmark.config import load_config
    from benchmark.spec import TaskSettings

    settings = (TaskSettings.for_data(json.loads(args.spec)) if args.spec
                else load_config(_run_config(args)).task_spec(args.task))
    _prepare(settings, Path(args.out))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from benchmark import registry
    from benchmark.baselines import BUILTIN

    for name, m in sorted(registry.methods().items()):
        coords = "; ".join(x.label() for x in m.mods) or ("all tensors" if m.train_all else "head only")
        print(f"{name:20s} {coords}  ({m.source})")
    print("baselines (a method on another backbone or other weights; a config adds its own under `baselines:`):")
    for name, b in sorted(BUILTIN.items()):
        options = "".join(f", {k}={v}" for k, v in sorted(b.backbone_options.items()))
        print(f"{name:20s} {b.method} on {b.backbone or 'the task backbone'}, init {b.init}{options}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """Every task family: its paper, metric, default backbone, where its data comes from, and its package."""
    from benchmark import registry

    for name, task in sorted(registry.tasks().items()):
        hub = getattr(task, "hub_id", None) or task.options.get("hub_id")
        data = f"Hub {hub}" if hub else ("prepared data (petl-bench data)" if task.needs_data else "generated")
        origin = registry.task_origin(name)
        where = getattr(origin, "package", None) or "petl-bench"
        doc = (task.__doc__ or "").strip().splitlines()[0] if task.__doc__ else ""
        print(f"{name:18s} {task.paper:7s} {task.metric:10s} backbone {task.default_backbone:16s} data: {data}"
              f"  ({where}){'  — ' + doc if doc else ''}")
    return 0


def backbone_source(spec: Any) -> str:
    """Where a backbone's weights come from, in words."""
    from benchmark.backbones.registry import BACKBONE_OPTIONS, CONFIG_DIR

    if spec.source.startswith("package:"):
        where = f"local wheel {spec.source.split(':', 1)[1]} (offline)"
    elif spec.source == "tiny":
        where = "random-init config in the code (no weights; a test stand-in)" if spec.stand_in else \
            "random-init config in the code (no pretrained weights exist: init pretrained is refused)"
    else:
        where = f"Hub {spec.source}"
    if (CONFIG_DIR / f"{spec.name}.json").exists():
        where += "; architecture config shipped (parameter counts offline)"
    options = BACKBONE_OPTIONS.get(spec.family, {})
    if options:
        where += "; options " + ", ".join(f"{k}: {'|'.join(v)}" for k, v in sorted(options.items()))
    return where


def cmd_backbones(args: argparse.Namespace) -> int:
    """Every backbone name with its architecture family and where it comes from."""
    from benchmark.backbones.registry import BACKBONES

    for name, spec in sorted(BACKBONES.items()):
        print(f"{name:18s} {spec.family:11s} {backbone_source(spec)}")
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

    n = ingest(Path(args.runs), args.db_url or f"sqlite:///{args.db}",
               planned=Path(args.planned) if args.planned else None)
    print(f"ingested {n} records into {args.db_url or args.db}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """Per paper: reported cells / with a planned run / filled (with --db) / unreachable, and why."""
    from benchmark.config import load_config, read_yaml
    from leaderboard.coverage import coverage, filled_cells, summary

    if args.rehearsal:  # the grid's rehearsal: its planned runs, and by default its own database
        if not Path(args.config).is_file():
            raise ConfigError(f"config file {args.config} does not exist")
        cfg = load_config({**(read_yaml(Path(args.config)) or {}), "rehearsal": True}, args.config)
        args.db = args.db or (None if args.db_url else f"{cfg.raw['results']}/bench.sqlite")
    else:
        cfg = load_config(args.config)
    db = args.db_url or (f"sqlite:///{args.db}" if args.db else None)
    if args.db and not args.db_url and not Path(args.db).is_file():
        raise ConfigError(f"--db {args.db}: no such database; run `petl-bench ingest --db {args.db}` first")
    print(summary(coverage(cfg, filled_cells(db, rehearsal=cfg.raw["rehearsal"]) if db else None)))
    if cfg.raw["rehearsal"]:
        print("these cells are filled by a rehearsal (stand-in backbones, fixture data): every planned job ran, "
              "but no number is a result")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from leaderboard.site import render_site

    if not args.db_url and not Path(args.db).is_file():
        raise ConfigError(f"--db {args.db}: no such database; run `petl-bench ingest --db {args.db}` first")
    index = render_site(args.db_url or f"sqlite:///{args.db}", Path(args.out),
                        planned=Path(args.planned) if args.planned else None, perf_dir=Path(args.perf),
                        tables_dir=Path(args.tables) if args.tables else None,
                        plots_dir=Path(args.plots) if args.plots else None)
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


DATA_DIR_HELP = "the root of local dataset copies in the Hub's schema, one folder per task family: ROOT/sst2/…"


def _task_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="a task instance from --config, or a task family (`petl-bench tasks`)")
    p.add_argument("--config", help="a grid config file whose task and method definitions apply")
    p.add_argument("--data-dir", metavar="ROOT", help=DATA_DIR_HELP + " (the same as a config's data_dir; "
                                                     "default: download from the Hub)")


def _run_args(p: argparse.ArgumentParser) -> None:
    _task_arg(p)
    p.add_argument("--method", default="fpt", help="a method (`petl-bench methods`) or one defined in --config")
    p.add_argument("--budget", default="default",
                   help="'default' (the method's paper sizes), sizes such as r8 or l30-r512, or a share such as 0.5pct")
    p.add_argument("--seed", type=int, default=1, help="random seed (a non-negative integer)")
    p.add_argument("--backbone", help="override the task's backbone (`petl-bench backbones`; default: the task's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="training override, repeatable, e.g. --set max_steps=200 (keys: the schema's train block)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--resources", default="resources", help="folder for prepared data and GPU locks")
    p.add_argument("--spec", help=argparse.SUPPRESS)  # the resolved spec, as JSON (used by the Snakefile)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="petl-bench", description=__doc__, formatter_class=Help)
    ap.add_argument("--version", action="version", version=f"petl-bench {_version()}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("env", help="versions of Python, torch, CUDA, transformers, peft, snakemake and the lock digest "
                                   "(paste into a bug report)")
    p.set_defaults(fn=cmd_env)

    p = sub.add_parser("train", help="train one (task, method, budget, seed) and write its record.json")
    _run_args(p)
    p.add_argument("--out", required=True, help="the run folder (record.json, run.log, checkpoint/)")
    p.add_argument("--data", help="the task's prepared data folder (default: prepared under --resources)")
    p.add_argument("--log", help="log file (default: OUT/run.log)")
    p.add_argument("--force", action="store_true",
                   help="train from scratch: discard the folder's record.json and checkpoints (never resumed)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the full Trainer checkpoints after record.json (default: only delta.safetensors)")
    p.add_argument("--gpu-ids", help="comma-separated GPU ids shared by concurrent jobs; this job claims a free one")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("warm-server", help="import torch and transformers once and fork each `train` that finds "
                                           "SOCKET in $PETL_BENCH_WARM (the workflow starts it for CPU runs)")
    p.add_argument("--socket", required=True, help="the Unix socket to listen on (appears once the imports are done)")
    p.add_argument("--parent", type=int, help="end when the process with this id (the Snakemake run) is gone")
    p.set_defaults(fn=cmd_warm_server)

    p = sub.add_parser("data", help="fetch a task's data from the Hub, or copy it from --data-dir, into a folder")
    _task_arg(p)
    p.add_argument("--out", required=True, help="the folder to write (train reads it with --data)")
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_data)

    p = sub.add_parser("standin", help="write a rehearsal stand-in of a backbone: tiny, random weights, the real "
                                       "architecture's position tables, vocabulary and special tokens")
    p.add_argument("--backbone", required=True, help="a registered backbone name (see `petl-bench backbones`)")
    p.add_argument("--out", required=True, help="the folder to write, in the Hub layout")
    p.add_argument("--version", default=None, help="the stand-in recipe version the caller expects (default: this "
                                                   "installation's)")
    p.set_defaults(fn=cmd_standin)

    p = sub.add_parser("methods", help="list every method with its coordinates in the design space")
    p.set_defaults(fn=cmd_methods)

    p = sub.add_parser("tasks", help="list every task family: paper, metric, default backbone, data source")
    p.set_defaults(fn=cmd_tasks)

    p = sub.add_parser("backbones", help="list every backbone and where it comes from (Hub id, local wheel, "
                                         "random-init config)")
    p.set_defaults(fn=cmd_backbones)

    p = sub.add_parser("params", help="trainable parameter counts of a method on a backbone (meta device)")
    p.add_argument("--backbone", required=True, help="a backbone name (`petl-bench backbones`)")
    p.add_argument("--method", required=True, help="a method name (`petl-bench methods`) or one from --config")
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
    p.add_argument("--batch", type=int, default=8, help="sequences per training step")
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
    p.add_argument("--out", default="results/perf", help="folder for perf records")
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

    p = sub.add_parser("coverage", help="per paper: reported cells, cells with a planned run, cells filled, cells "
                                        "unreachable and why")
    p.add_argument("--config", default="config/config.yaml", help="the grid whose planned runs count")
    p.add_argument("--db", help="a database whose runs count as filled (else filled is 0)")
    p.add_argument("--db-url", help="any SQLAlchemy URL (overrides --db)")
    p.add_argument("--rehearsal", action="store_true",
                   help="count the config's rehearsal (`rehearsal: true`): its planned runs and, unless --db is given, "
                        "its database <results root>-rehearsal/bench.sqlite")
    p.set_defaults(fn=cmd_coverage)

    for name, fn, text in (("ingest", cmd_ingest, "index run records into the database"),
                           ("report", cmd_report, "render the static HTML leaderboard")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--db", default="results/bench.sqlite", help="the SQLite database file")
        p.add_argument("--db-url", help="any SQLAlchemy URL (overrides --db)")
        if name == "ingest":
            p.add_argument("--runs", default="results/runs", help="folder searched for */record.json")
            p.add_argument("--planned", help="a grid's planned.json: index only its runs (others in --runs are "
                                             "left out, and dropped from the database)")
        else:
            p.add_argument("--out", default="results/leaderboard", help="folder for the static site")
            p.add_argument("--planned", help="JSON list of planned run keys, so the overview can count missing runs")
            p.add_argument("--perf", default="results/perf", help="`petl-bench perf` records for the cost page")
            p.add_argument("--tables", help="folder for the paper tables (.md, .tex; default: OUT/../tables)")
            p.add_argument("--plots", help="folder for each task's plots as SVG files (default: OUT/../plots)")
        p.set_defaults(fn=fn)
    return ap


class Help(argparse.HelpFormatter):
    """Help that shows each flag's default, unless there is none or the text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Subcommand parsers with the same help formatter."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        kw.setdefault("formatter_class", Help)
        super().__init__(*a, **kw)
def cmd_warm_server(args: argparse.Namespace) -> int:
    from benchmark.warmstart import serve

    serve(Path(args.socket), args.parent)
    return 0


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """A run folder's refusals (locked, foreign checkpoint). Looked up only once one is raised: importing
    `benchmark.rundir` imports the Trainer, which `train` must not do before `skip_unused_imports`."""
    from benchmark.rundir import ForeignCheckpoint, RunLocked

    return RunLocked, ForeignCheckpoint


def main(argv: list[str] | None = None, *, lean: bool = False) -> int:
    """The command line. `lean` (the `petl-bench` program, one process per command) lets `train` keep unused
    packages out of the process (`skip_unused_imports`); a caller importing `main` keeps its own modules intact."""
    args = parser().parse_args(argv)
    args.lean = lean
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except (ConfigError, FileExistsError, RecordError) as e:
        print(f"petl-bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        hint = _environment_hint(e, getattr(args, "out", None))
        if hint is None:
            raise
        print(f"petl-bench {args.command}: error: {hint}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if args.command not in ("ingest", "report") or not e.name:
            raise
        print(f"petl-bench {args.command}: error: the database driver {e.name!r} is not installed: pip install it "
              f"(PostgreSQL: psycopg2-binary, or psycopg[binary] with postgresql+psycopg:// URLs)", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if args.command != "train" or not isinstance(e, _runtime_errors()):
            raise
        print(f"petl-bench {args.command}: error: {e}", file=sys.stderr)
        return 2


def _environment_hint(e: OSError, folder: str | None = None) -> str | None:
    """One line for what the machine, not the code, got wrong: an unwritable folder or a full disk (`folder`: where
    the command writes, named when the error does not say which file)."""
    import errno

    where = e.filename or folder or "a file"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where}: {e.strerror}; point --out / --db / the config's results: at a folder you "
                f"can write")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return _no_space(where)
    return None


def _no_space(where: str) -> str:
    return (f"no space left writing {where}; free some (full checkpoints go once a run's record is written; the "
            f"run resumes from its last complete one) or point results: elsewhere")




def console() -> int:
    """The `petl-bench` program. A train job hands itself to the workflow's warm server when there is one
    (benchmark.warmstart), else runs here."""
    if sys.argv[1:2] == ["train"]:
        from benchmark.warmstart import run_warm

        code = run_warm(sys.argv[1:])
        if code is not None:
            return code
    return main(lean=True)


if __name__ == "__main__":
    sys.exit(console())
