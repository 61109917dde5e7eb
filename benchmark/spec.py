"""A run's identity: the typed, resolved spec that config hands to training, and its digest.

Everything that can change a result — the task instance (family, options, data, version), the backbone (name and
local path), the method's composition, the budget, the training recipe and the seed — is part of `identity()`;
its SHA-256 is the run's digest. The digest names the run's folder (so two configurations never share a record or
a checkpoint, and Snakemake plans a new job when any of it changes), is stored in every checkpoint (so a run only
resumes its own) and in the record. What cannot change a result (threads, host, commit, versions, names and
labels) stays outside it.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from benchmark.errors import ConfigError

# Names become folder names and shell arguments: letters, digits and `. _ + -`, starting with a letter or digit (so
# never `.`/`..`, never an option like `-x`, never a slash, a space, a quote or a shell metacharacter), ≤ 100 chars.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
SAFE_NAME_TEXT = "letters, digits and . _ + - (starting with a letter or digit, at most 100 characters)"
SHORT = 12  # hex digits of a digest in folder names: 48 bits, no accidental collision in any real grid


def check_name(name: Any, where: str) -> str:
    """A name that may become a path component and a shell argument; else a ConfigError saying what is allowed."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ConfigError(f"{where}: name {name!r} is not allowed; use only {SAFE_NAME_TEXT} — names become "
                          f"folder names and command-line arguments")
    return name


def canonical(obj: Any) -> str:
    """The one JSON text of a value that its digest is taken over (sorted keys, no spaces, floats as Python
    prints them), so equal specs give equal digests on every machine."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


@dataclass(frozen=True)
class TaskSettings:
    """A resolved task instance: the family's defaults with the config's instance settings applied."""
    name: str  # the instance's name in the config (a label; not part of the identity)
    task: str  # the task family
    backbone: str
    backbone_path: str | None
    data_dir: str | None
    options: dict[str, Any]
    train: dict[str, Any]  # the instance's recipe, before grid-block overrides
    version: str | None = None
    paper: dict[str, Any] = field(default_factory=dict)  # explicit paper-cell fields (task, backbone)
    # the backbone family's resolved options (benchmark.backbones.registry.BACKBONE_OPTIONS); {} for families without
    backbone_options: dict[str, Any] = field(default_factory=dict)
    rehearsal: str | None = None  # a rehearsal's stand-in backbones folder (benchmark.rehearsal); None: a real run

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "task": self.task, "backbone": self.backbone, "backbone_path": self.backbone_path,
               "data_dir": self.data_dir, "options": self.options, "train": self.train, "version": self.version,
               "paper": self.paper}
        out = {**out, "backbone_options": self.backbone_options} if self.backbone_options else out
        return {**out, "rehearsal": self.rehearsal} if self.rehearsal else out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "TaskSettings":
        return cls(name=raw["name"], task=raw["task"], backbone=raw["backbone"],
                   backbone_path=raw.get("backbone_path"), data_dir=raw.get("data_dir"),
                   options=dict(raw.get("options") or {}), train=dict(raw.get("train") or {}),
                   version=raw.get("version"), paper=dict(raw.get("paper") or {}),
                   backbone_options=dict(raw.get("backbone_options") or {}), rehearsal=raw.get("rehearsal"))

    @classmethod
    def of(cls, task: Any, *, backbone: str | None = None, data_dir: str | None = None,
           **options: Any) -> "TaskSettings":
        """A task family's own settings, `options` over its defaults (for tests, docs and examples; a config's
        instances are resolved, and checked, by `benchmark.config`)."""
        return cls(name=task.name, task=task.name, backbone=backbone or task.default_backbone, backbone_path=None,
                   data_dir=data_dir, options={**task.options, **options}, train=dict(task.recipe),
                   version=task.version)

    @classmethod
    def for_data(cls, raw: dict[str, Any]) -> "TaskSettings":
        """The settings the data rule prepares from: only what the data digest covers (family, options, data_dir,
        version: never an instance's name, backbone or recipe, so that instances share one folder); the rest is
        the family's name and defaults, which `Task.prepare` never reads."""
        try:
            family = str(raw["task"])
            from benchmark.registry import get_task

            backbone = get_task(family).default_backbone
            return cls(name=family, task=family, backbone=backbone, backbone_path=None, data_dir=raw.get("data_dir"),
                       options=dict(raw["options"]), train={}, version=raw.get("version"),
                       rehearsal=raw.get("rehearsal"))
        except (KeyError, TypeError) as e:
            raise ConfigError(f"data settings: missing or malformed field {e} (expected task, options, data_dir, "
                              f"version)") from None

    def identity(self) -> dict[str, Any]:
        """What of the instance can change a result. Backbone options appear only for the families that have them
        (LSTM, ViT), so every other run's digest is what it was before they existed."""
        out = {"family": self.task, "options": self.options, "version": self.version,
               "backbone": self.backbone, "backbone_path": self.backbone_path, "data_dir": self.data_dir}
        out = {**out, "backbone_options": self.backbone_options} if self.backbone_options else out
        return {**out, "rehearsal": self.rehearsal} if self.rehearsal else out  # real runs keep their digests

    @property
    def data_digest(self) -> str:
        """What the prepared data folder depends on (not the backbone or the recipe): it names that folder, so a
        new data_dir or option prepares the data again instead of training on a stale copy."""
        data = {"family": self.task, "options": self.data_options, "version": self.version, "data_dir": self.data_dir}
        return digest({**data, "rehearsal": True} if self.rehearsal else data)[:SHORT]  # fixtures: their own folder

    @property
    def data_options(self) -> dict[str, Any]:
        """The options that can change prepared data: all but those read only when evaluating (`converge_at`), so
        CIFAR-10's instances on six backbones share one prepared folder."""
        return {k: v for k, v in self.options.items() if k not in EVAL_ONLY_OPTIONS}


EVAL_ONLY_OPTIONS = ("converge_at",)  # task options that never change the prepared data
# What of a spec's method block is identity: what trains, and the weights the backbone starts from (a baseline's
# `init`; `pretrained` for a plain method). Name, source, description and the baseline's label are labels.
METHOD_IDENTITY = ("compose", "train_all", "init")


@dataclass(frozen=True)
class RunSpec:
    """Everything one training job needs, typed: config → `petl-bench train` → task. `digest` is its identity."""
    task: TaskSettings
    # Method.to_dict() plus `init` (the backbone's weights: a baseline's, else `pretrained`) and, for a baseline row,
    # `baseline` (its definition); at training time also where the method came from
    method: dict[str, Any]
    method_name: str
    budget: str
    seed: int
    train: dict[str, Any]  # the recipe with this run's grid-block overrides applied
    overrides: dict[str, Any] = field(default_factory=dict)  # the grid block's own training overrides
    threads: int = 1
    save_backbone: str | None = None  # a pretraining run saves its trained backbone here (not identity)

    @property
    def key(self) -> dict[str, Any]:
        return {"task": self.task.name, "method": self.method_name, "budget": self.budget, "seed": self.seed}

    def identity(self, *, seed: bool = True) -> dict[str, Any]:
        out = {"task": self.task.identity(), "method": {k: self.method.get(k) for k in METHOD_IDENTITY},
               "budget": self.budget, "train": self.train}
        return {**out, "seed": self.seed} if seed else out

    @property
    def digest(self) -> str:
        """The run's identity."""
        return digest(self.identity())

    @property
    def variant(self) -> str:
        """The identity without the seed: the runs that the leaderboard pools as seeds of one configuration."""
        return digest(self.identity(seed=False))[:SHORT]

    @property
    def path(self) -> str:
        """The run folder under `runs/`: readable names, then the variant digest, then the seed."""
        return f"{self.task.name}/{self.method_name}/{self.budget}/{self.variant}/{self.seed}"

    @property
    def init(self) -> str:
        """The weights the backbone starts from: `pretrained`, `random`, `stats` or `bit` (benchmark.baselines)."""
        return str(self.method.get("init", "pretrained"))

    @property
    def trained_backbone(self) -> str:
        """The backbone that really trains (a baseline's backbone replaced the task's when the spec was built)."""
        return self.task.backbone

    @property
    def paper(self) -> dict[str, Any]:
        """The paper cell this run answers, by explicit fields (never by instance name): the task family (or the
        instance's `paper.task`), the backbone that trained (or `paper.backbone`), the method and the budget."""
        return {"task": self.task.paper.get("task") or self.task.task,
                "backbone": self.task.paper.get("backbone") or self.trained_backbone,
                "method": self.method_name, "budget": self.budget, "override": bool(self.method.get("override"))}

    @property
    def label(self) -> str:
        """A readable name for the configuration: the method, plus the grid block's overrides when it has any."""
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))
        return f"{self.method_name} ({extra})" if extra else self.method_name

    def with_(self, **changes: Any) -> "RunSpec":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The plain-JSON form that travels to a job and into the record's `config`."""
        out = {"key": self.key, "task": self.task.to_json(), "method": self.method, "budget": self.budget,
               "seed": self.seed, "train": self.train, "overrides": self.overrides, "threads": self.threads,
               "digest": self.digest, "variant": self.variant, "label": self.label}
        if self.save_backbone:
            out["save_backbone"] = self.save_backbone
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "RunSpec":
        """Parse a spec; a stated digest that does not match the content is an error (a hand-edited spec)."""
        try:
            spec = cls(task=TaskSettings.from_json(raw["task"]), method=dict(raw["method"]),
                       method_name=str(raw["key"]["method"]), budget=str(raw["budget"]), seed=raw["seed"],
                       train=dict(raw["train"]), overrides=dict(raw.get("overrides") or {}),
                       threads=int(raw.get("threads", 1)), save_backbone=raw.get("save_backbone"))
        except (KeyError, TypeError) as e:
            raise ConfigError(f"run spec: missing or malformed field {e}") from None
        if not isinstance(spec.seed, int) or isinstance(spec.seed, bool):
            raise ConfigError(f"run spec: seed {spec.seed!r} is not an integer")
        if raw.get("digest") not in (None, spec.digest):
            raise ConfigError(f"run spec: stated digest {raw['digest']} does not match its content ({spec.digest})")
        return spec
