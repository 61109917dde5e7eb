"""From a config mapping to fully resolved run specs: validation, defaults, name checks.

The Snakefile and `petl-bench train` both go through `load_config` and `run_spec`, so a
run planned by Snakemake and a run started by hand are configured identically. Every
check here happens before any model is built; errors name the key and the valid values.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from benchmark import registry
from benchmark.backbones.registry import backbone_options, check_init, get_backbone
from benchmark.baselines import BUILTIN as BUILTIN_BASELINES, Baseline, baseline_from_dict
from benchmark.errors import ConfigError
from benchmark.methods.budget import check_budget, parse_budget, with_sizes
from benchmark.methods.space import Method, method_from_dict
from benchmark.spec import RunSpec, TaskSettings, check_name, digest

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"  # package data (wheel-safe)
SCHEMA: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())  # read once; validation deep-copies defaults
TRAIN_KEYS = set(SCHEMA["$defs"]["train"]["properties"])


def _with_defaults(validator_cls: type) -> type:
    """A jsonschema validator that fills in `default` values as it validates."""
    validate_props = validator_cls.VALIDATORS["properties"]

    def props(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    # JSON calls 1.0 an integer; a seed of 1.0 would name a run folder "1.0", so integers must be ints
    types = validator_cls.TYPE_CHECKER.redefine(
        "integer", lambda checker, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(validator_cls, {"properties": props}, type_checker=types)


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _path(error: jsonschema.ValidationError) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return parts.lstrip(".") or "(top level)"


def _hint(error: jsonschema.ValidationError) -> str:
    """The YAML 1.1 trap: `1e-4` (no dot) loads as a string, so a learning rate arrives as text."""
    if error.validator == "type" and isinstance(error.instance, str) and "e" in error.instance.lower():
        try:
            float(error.instance)
        except ValueError:
            return ""
        return f" (YAML reads {error.instance} as text: write it with a dot, e.g. 1.0e-4)"
    return ""


def validate(raw: dict[str, Any]) -> dict[str, Any]:
    """Schema-check a config (a copy, with defaults filled in); the error names the offending key."""
    cfg = copy.deepcopy(dict(raw))
    errors = sorted(_Validator(SCHEMA).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ConfigError(f"config key {_path(e)}: {e.message}{_hint(e)}")
    return cfg


@dataclass(frozen=True)
class Run:
    """One grid point as the config names it. `train` holds its grid block's training overrides, so two blocks
    that run the same method with different settings plan two runs (with two identities), not one."""
    task: str
    method: str
    budget: str
    seed: int
    train: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, task: str, method: str, budget: str, seed: int, train: dict[str, Any] | None = None) -> "Run":
        return cls(task, method, budget, seed, tuple(sorted((train or {}).items())))

    @property
    def name(self) -> str:
        return f"{self.task}/{self.method}/{self.budget}/{self.seed}"


class Config:
    """A validated config: task instances, methods (registered ⊕ config-defined), baselines (built-in ⊕
    config-defined), and the grid."""

    def __init__(self, raw: dict[str, Any], results_root: str = "results") -> None:
        registry.load_plugins()  # plugin forms must be known before config-defined methods are parsed
        self.raw = validate(raw)
        self.raw["results"] = self.raw["results"] or results_root
        if self.raw["rehearsal"]:  # its own results root: a rehearsal record can never sit among real ones
            from benchmark.rehearsal import rehearse

            self.raw = rehearse({**self.raw, "results": f"{self.raw['results']}-rehearsal"})
        elif self.raw["rehearsal_sample"]:
            raise ConfigError("rehearsal_sample: true only applies with rehearsal: true (it samples the rehearsal)")
        self._check_names()
        self.overrides = {n for n, m in self.raw["methods"].items() if m.get("override") is True}
        self.methods = {n: method_from_dict(n, {k: v for k, v in m.items() if k != "override"})
                        for n, m in self.raw["methods"].items()}
        self.baselines: dict[str, Baseline] = {}
        self.baselines = self._baselines()
        self._settings: dict[str, TaskSettings] = {}
        self.runs = self._expand()
        for name in {r.task for r in self.runs}:
            self.task_spec(name)
        self.specs = {r: self.spec(r) for r in self.runs}
        self.aliases = self._plan_once()
        if self.raw["rehearsal_sample"]:
            self._sample()
        self._check_collisions()

    def _check_names(self) -> None:
        """Task, method and budget names become folders and command-line arguments: check them before anything
        else, and refuse a config method that would silently take a built-in's (or plugin's) name."""
        for name, inst in self.raw["tasks"].items():
            check_name(name, f"tasks.{name}")
            for key, value in inst.get("paper", {}).items():  # stored beside the names (and fit the same columns)
                check_name(value, f"tasks.{name}.paper.{key}")
        for name, m in self.raw["methods"].items():
            check_name(name, f"methods.{name}")
            if "override" in m and not isinstance(m["override"], bool):
                raise ConfigError(f"methods.{name}.override: {m['override']!r} is not true or false")
            if name in registry.methods() and m.get("override") is not True:
                raise ConfigError(f"methods.{name}: {name!r} is already a method ({registry.methods()[name].source}); "
                                  f"rename yours, or set `override: true` to replace it in this grid (the "
                                  f"leaderboard then marks its rows as overridden)")
        for name, b in self.raw["baselines"].items():
            check_name(name, f"baselines.{name}")
            if name in registry.methods() or name in self.raw["methods"]:
                raise ConfigError(f"baselines.{name}: {name!r} is already a method; a grid block's methods name "
                                  f"both, so a baseline needs a name of its own")
            if name in BUILTIN_BASELINES and b.get("override") is not True:
                raise ConfigError(f"baselines.{name}: {name!r} is already a built-in baseline; rename yours, or set "
                                  f"`override: true` to replace it in this grid (the leaderboard then marks its rows)")
        for i, block in enumerate(self.raw["grid"]):
            for key in ("tasks", "methods", "budgets"):
                for j, name in enumerate(block[key]):
                    check_name(name, f"grid[{i}].{key}[{j}]")

    def _baselines(self) -> dict[str, Baseline]:
        """Built-in baselines with the config's own: each one's method and backbone (and its options) must exist."""
        own = {n: baseline_from_dict(n, {k: v for k, v in b.items() if k != "override"})
               for n, b in self.raw["baselines"].items()}
        self.overrides |= {n for n, b in self.raw["baselines"].items() if b.get("override") is True}
        out = {**BUILTIN_BASELINES, **own}
        for name, b in own.items():
            where = f"baselines.{name}"
            if b.method in out:
                raise ConfigError(f"{where}.method: {b.method!r} is a baseline; name the method it runs "
                                  f"({out[b.method].method!r}) instead")
            self.method(b.method, f"{where}.method")
            if b.backbone is not None:
                try:
                    get_backbone(b.backbone)
                except ConfigError as e:
                    raise ConfigError(f"{where}.backbone: {e}") from None
                backbone_options(b.backbone, b.backbone_options, f"{where}.backbone_options")
        return out

    def _check_collisions(self) -> None:
        """Two grid points never write to one folder: the folder holds the identity digest, so only the same
        identity under the same names could meet there, and that is the same run."""
        seen: dict[str, Run] = {}
        for run, spec in self.specs.items():
            other = seen.setdefault(spec.path, run)
            if other != run and self.specs[other].digest != spec.digest:  # pragma: no cover - a digest collision
                raise ConfigError(f"grid: runs {other} and {run} would share the folder {spec.path}")

    def resolved_identity(self, spec: RunSpec) -> str | None:
        """The run's identity with its budget name replaced by the sizes it resolves to ('default' of prefix and
        'l200' are one run); None for a share budget ('0.5pct'), which only a built model resolves."""
        kind, sizes = parse_budget(spec.budget)
        if kind == "pct":
            return None
        method = self.method(spec.method_name)
        if kind == "sizes":
            method = with_sizes(method, sizes)  # type: ignore[arg-type]
        resolved = method.to_dict()
        identity = {**spec.identity(), "budget": None,
                    "method": {"compose": resolved["compose"], "train_all": resolved["train_all"], "init": spec.init}}
        return digest(identity)

    def _plan_once(self) -> dict[Run, Run]:
        """Plan each resolved run once. Of grid points naming one run under two budgets (He et al.'s Table 6
        `prefix default` and Table 4's `prefix l200`), the `default` one (else the first) is planned and the others
        become its aliases: the leaderboard matches a size budget by the resolved sizes a record carries, so every
        paper cell of the alias reads the planned run. Returns {dropped run: planned run}."""
        planned: dict[str, Run] = {}
        aliases: dict[Run, Run] = {}
        for run in sorted(self.runs, key=lambda r: r.budget != "default"):  # stable: config order otherwise
            key = self.resolved_identity(self.specs[run])
            if key is None:
                continue
            if key in planned:
                aliases[run] = planned[key]
            else:
                planned[key] = run
        self.runs = [r for r in self.runs if r not in aliases]
        self.specs = {r: s for r, s in self.specs.items() if r not in aliases}
        return aliases

    def method_family(self, name: str) -> tuple[Any, ...]:
        """What a method (or baseline) exercises in code: its forms, whether everything trains, the weights it starts
        from and a swapped-in backbone."""
        m, baseline = self.method(name), self.baselines.get(name)
        return (tuple(sorted({mod.form for mod in m.mods})), m.train_all,
                baseline.init if baseline else "pretrained", baseline.backbone if baseline else None)

    def _sample(self) -> None:
        """A rehearsal's CI sample: every task family and every method family at least once (a run is kept when it
        brings a new one), so each data rule, stand-in, head, form and init path runs, with the Bit pretraining."""
        tasks: set[str] = set()
        methods: set[tuple[Any, ...]] = set()
        keep = []
        for run in self.runs:
            task, method = self.task_family(run.task), self.method_family(run.method)
            if task not in tasks or method not in methods:
                tasks.add(task)
                methods.add(method)
                keep.append(run)
        self.runs = keep
        self.specs = {r: self.specs[r] for r in keep}

    def _expand(self) -> list[Run]:
        runs: dict[Run, None] = {}
        for i, block in enumerate(self.raw["grid"]):
            where = f"grid[{i}]"
            for t in block["tasks"]:
                self.task_family(t, f"{where}.tasks")
            for m in block["methods"]:
                method = self.method(m, f"{where}.methods")
                for b in block["budgets"]:
                    try:
                        check_budget(method, b)
                    except ConfigError as e:
                        raise ConfigError(f"{where}.budgets: {e}") from None
            for t in block["tasks"]:
                for m in block["methods"]:
                    for b in block["budgets"]:
                        for s in block["seeds"]:
                            runs[Run.of(t, m, b, s, block["train"])] = None
        return list(runs)

    def method(self, name: str, where: str = "method") -> Method:
        """The method of a grid point: a method by name, or the one a baseline runs."""
        baseline = self.baselines.get(name)
        try:
            return registry.get_method(baseline.method if baseline else name, self.methods)
        except ConfigError as e:
            if baseline is None:
                e = ConfigError(f"{e} (or a baseline: {', '.join(sorted(self.baselines))})")
            raise ConfigError(f"{where}: {e}") from None

    def task_family(self, name: str, where: str = "task") -> str:
        family = self.raw["tasks"].get(name, {}).get("task", name)
        try:
            registry.get_task(family)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        return family

    def task_spec(self, name: str) -> TaskSettings:
        """Resolved settings of a task instance: family defaults ⊕ config; checked (backbone, data, options)."""
        if name not in self._settings:
            self._settings[name] = self._task_spec(name)
        return self._settings[name]

    def _task_spec(self, name: str) -> TaskSettings:
        family = self.task_family(name, f"tasks.{name}")
        task = registry.get_task(family)
        inst = self.raw["tasks"].get(name, {})
        where = f"tasks.{name}"
        data_dir = inst.get("data_dir")
        if data_dir is None and self.raw["data_dir"] is not None and task.needs_data:
            data_dir = str(Path(self.raw["data_dir"]) / family)
        if data_dir is not None and not Path(data_dir).is_dir():
            raise ConfigError(f"{where}.data_dir: folder {data_dir} does not exist (set data_dir to a folder of "
                              f"local copies, or null to download from the Hub)")
        backbone = inst.get("backbone", task.default_backbone)
        try:
            get_backbone(backbone)
        except ConfigError as e:
            raise ConfigError(f"{where}.backbone: {e}") from None
        train = {**task.recipe, **inst.get("train", {})}
        bad = sorted(set(inst.get("train", {})) - TRAIN_KEYS)
        if bad:
            raise ConfigError(f"{where}.train: unknown key(s) {bad}; valid: {', '.join(sorted(TRAIN_KEYS))}")
        paper = dict(inst.get("paper", {}))
        options = backbone_options(backbone, inst.get("backbone_options"), f"{where}.backbone_options")
        settings = TaskSettings(name=name, task=family, backbone=backbone, backbone_path=inst.get("backbone_path"),
                                data_dir=data_dir, options={**task.options, **inst.get("options", {})}, train=train,
                                version=task.version, paper=paper, backbone_options=options,
                                rehearsal=inst.get("rehearsal"))
        task.check(settings, where)
        return settings

    def spec(self, run: Run) -> RunSpec:
        """Everything a training job needs, typed; its digest is the run's identity."""
        settings = self.task_spec(run.task)
        overrides = dict(run.train)
        bad = sorted(set(overrides) - TRAIN_KEYS)
        if bad:
            raise ConfigError(f"grid train overrides: unknown key(s) {bad}; valid: {', '.join(sorted(TRAIN_KEYS))}")
        settings, method = self._row(settings, run.method)
        check_init(settings.backbone, method["init"], settings.backbone_path,
                   f"tasks.{run.task}.backbone with method {run.method!r} (init {method['init']!r})")
        if run.method in self.overrides:
            method["override"] = True
        return RunSpec(task=settings, method=method, method_name=run.method, budget=run.budget, seed=run.seed,
                       train={**settings.train, **overrides}, overrides=overrides, threads=self.raw["threads"])

    def _row(self, settings: TaskSettings, name: str) -> tuple[TaskSettings, dict[str, Any]]:
        """The task settings and method block of a grid row: a method trains on the task's pretrained backbone; a
        baseline runs its method with its own `init`, on its own backbone when it names one (replacing the task's,
        so the spec, the record and the paper cell all name the backbone that trained)."""
        baseline = self.baselines.get(name)
        m = self.method(name).to_dict()
        method = {"name": name, "compose": m["compose"], "train_all": m["train_all"],
                  "init": baseline.init if baseline else "pretrained",
                  **{k: v for k, v in m.items() if k not in ("name", "compose", "train_all")}}  # a plugin's `broken`
        if baseline is None:
            return settings, method
        method["description"] = baseline.description or m["description"]
        where = f"baselines.{name}.backbone_options"
        if baseline.backbone is not None and baseline.backbone != settings.backbone:
            paper = {k: v for k, v in settings.paper.items() if k != "backbone"}
            from benchmark.rehearsal import standin_path  # a rehearsal swaps in the baseline backbone's stand-in

            settings = replace(settings, backbone=baseline.backbone, paper=paper,
                               backbone_path=standin_path(settings, baseline.backbone),
                               backbone_options=backbone_options(baseline.backbone, baseline.backbone_options, where))
        elif baseline.backbone_options:
            given = {**settings.backbone_options, **baseline.backbone_options}
            settings = replace(settings, backbone_options=backbone_options(settings.backbone, given, where))
        return settings, {**method, "baseline": baseline.to_dict()}


def results_root_of(config_file: str | Path | None) -> str:
    """Each config writes under its own results root unless it names one: results/<config file's stem>."""
    return f"results/{Path(config_file).stem}" if config_file else "results"


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; an error names the file, line and column."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None


def load_config(source: str | Path | dict[str, Any] | None, config_file: str | Path | None = None) -> Config:
    """A Config from a YAML file, a mapping, or None (an empty grid with built-in defaults). `config_file` names
    the file a mapping came from (Snakemake's --configfile), which sets the default results root."""
    if source is None:
        return Config({"grid": [{"tasks": ["bit-xor"], "methods": ["fpt"]}]})
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        config_file, source = path, read_yaml(path) or {}
        if not isinstance(source, dict):
            raise ConfigError(f"{path}: a config must be a mapping of keys (results, tasks, methods, grid, ...)")
    return Config(source, results_root_of(config_file))
