"""From a config mapping to fully resolved run specs: validation, defaults, name checks.

The Snakefile and `petl-bench train` both go through `load_config` and `run_spec`, so a
run planned by Snakemake and a run started by hand are configured identically. Every
check here happens before any model is built; errors name the key and the valid values.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from benchmark import registry
from benchmark.backbones.registry import get_backbone
from benchmark.errors import ConfigError
from benchmark.methods.budget import check_budget
from benchmark.methods.space import Method, method_from_dict

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
    task: str
    method: str
    budget: str
    seed: int

    @property
    def path(self) -> str:
        return f"{self.task}/{self.method}/{self.budget}/{self.seed}"


class Config:
    """A validated config: task instances, methods (registered ⊕ config-defined), and the grid."""

    def __init__(self, raw: dict[str, Any]) -> None:
        registry.load_plugins()  # plugin forms must be known before config-defined methods are parsed
        self.raw = validate(raw)
        self.methods = {n: method_from_dict(n, m) for n, m in self.raw["methods"].items()}
        self.runs = self._expand()
        for name in {r.task for r in self.runs}:
            self.task_settings(name)

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
                            runs[Run(t, m, b, s)] = None
        return list(runs)

    def block_train(self, run: Run) -> dict[str, Any]:
        """Training overrides from every grid block that contains the run (later blocks win)."""
        out: dict[str, Any] = {}
        for block in self.raw["grid"]:
            if (run.task in block["tasks"] and run.method in block["methods"] and run.budget in block["budgets"]
                    and run.seed in block["seeds"]):
                out.update(block["train"])
        return out

    def method(self, name: str, where: str = "method") -> Method:
        try:
            return registry.get_method(name, self.methods)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def task_family(self, name: str, where: str = "task") -> str:
        family = self.raw["tasks"].get(name, {}).get("task", name)
        try:
            registry.get_task(family)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        return family

    def task_settings(self, name: str) -> dict[str, Any]:
        """Resolved settings of a task instance: family defaults ⊕ config; checked (backbone, data, options)."""
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
        settings = {"name": name, "task": family, "backbone": backbone, "backbone_path": inst.get("backbone_path"),
                    "data_dir": data_dir, "options": {**task.options, **inst.get("options", {})}, "train": train,
                    "version": task.version}
        task.check({**settings, "options": inst.get("options", {})}, where)
        return settings

    def spec(self, run: Run) -> dict[str, Any]:
        """Everything a training job needs, as plain JSON (it goes into the record as `config`)."""
        settings = self.task_settings(run.task)
        overrides = self.block_train(run)
        bad = sorted(set(overrides) - TRAIN_KEYS)
        if bad:
            raise ConfigError(f"grid train overrides: unknown key(s) {bad}; valid: {', '.join(sorted(TRAIN_KEYS))}")
        train = {**settings.pop("train"), **overrides}
        return {"key": {"task": run.task, "method": run.method, "budget": run.budget, "seed": run.seed},
                "task": settings, "method": self.method(run.method).to_dict(), "budget": run.budget,
                "seed": run.seed, "train": train, "threads": self.raw["threads"]}


def load_config(source: str | Path | dict[str, Any] | None) -> Config:
    """A Config from a YAML file, a mapping, or None (an empty grid with built-in defaults)."""
    if source is None:
        return Config({"grid": [{"tasks": ["bit-xor"], "methods": ["fpt"]}]})
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            source = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    return Config(source)
