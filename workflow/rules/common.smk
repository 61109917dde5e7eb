# Grid expansion and helpers shared by the rules. Everything is computed by benchmark.config.
# A run's folder holds its identity: runs/<task>/<method>/<budget>/<variant>/<seed>/, where <variant> is the digest
# of the resolved spec without the seed (benchmark.spec). A change to anything that can change a result gives the
# run a new folder, so Snakemake plans exactly the changed runs, and two configurations never share a record.
import json
import shlex
from dataclasses import replace
from benchmark import registry
from benchmark.config import Run
from benchmark.spec import RunSpec, SAFE_NAME

RESULTS = CFG.raw["results"]
RESOURCES = CFG.raw["resources"]
RUNS = CFG.runs
Q = shlex.quote  # every path and name that reaches a shell command goes through this (or Snakemake's :q)

wildcard_constraints:
    task=SAFE_NAME.pattern,
    method=SAFE_NAME.pattern,
    budget=SAFE_NAME.pattern,
    backbone=SAFE_NAME.pattern,
    variant=r"[0-9a-f]{12}",
    data_digest=r"[0-9a-f]{12}",
    seed=r"\d+",


def needs_data(task: str) -> bool:
    return registry.get_task(CFG.task_family(task)).needs_data


def data_dir(task: str) -> str:
    """The prepared data of a task instance: resources/data/<task family>/<digest of the data settings>, so instances
    that differ only in backbone or recipe (CIFAR-10 on six backbones) share one folder, prepared once."""
    spec = CFG.task_spec(task)
    return f"{RESOURCES}/data/{spec.task}/{spec.data_digest}"


def data_settings(family: str, data_digest: str) -> dict:
    """What the data rule prepares from: only the settings its digest covers (never an instance's name or backbone),
    read from any planned instance with that family and digest."""
    for name in sorted({r.task for r in RUNS}):
        spec = CFG.task_spec(name)
        if (spec.task, spec.data_digest) == (family, data_digest):
            return {"task": spec.task, "options": spec.data_options, "data_dir": spec.data_dir, "version": spec.version,
                    "rehearsal": spec.rehearsal}  # a rehearsal's data rule writes the task's fixture
    raise ValueError(f"{RESOURCES}/data/{family}/{data_digest} is no planned task's data (a stale target?)")


def standins(spec: RunSpec) -> list[str]:
    """A rehearsal run's stand-in backbone folder (its task's backbone, or the one its baseline swaps in); none for a
    real run, or for a run that starts from the Bit-pretrained checkpoint (an input of its own)."""
    if not spec.task.rehearsal or spec.method.get("init") == "bit":
        return []
    return [f"{spec.task.rehearsal}/{spec.task.backbone}"]


def record_path(spec: RunSpec) -> str:
    return f"{RESULTS}/runs/{spec.path}/record.json"


def spec_of(w) -> RunSpec:
    """The planned spec behind a run folder's wildcards (a folder outside this config's grid is an error)."""
    path = f"{w.task}/{w.method}/{w.budget}/{w.variant}/{w.seed}"
    if path not in SPECS:
        raise ValueError(f"{RESULTS}/runs/{path} is not a run of this config's grid (a stale target?)")
    return SPECS[path]


# Lu et al.'s Bit baseline: runs with init `bit` start from a pretrained checkpoint whose folder holds the
# pretraining spec's digest; that path is part of their identity (see pretrain.smk).
def bit_pretrain_spec(backbone: str) -> RunSpec:
    task = "bit-pretrain" if "bit-pretrain" in CFG.raw["tasks"] else "bit-memory"
    spec = CFG.spec(Run(task, "full", "default", 0))
    return spec.with_(task=replace(spec.task, backbone=backbone), method={**spec.method, "init": "random"})


def bit_checkpoint(backbone: str) -> str:
    return f"{RESOURCES}/backbones/bit-memory/{backbone}/{bit_pretrain_spec(backbone).variant}"


def _with_bit_backbone(spec: RunSpec) -> RunSpec:
    if spec.method.get("init") != "bit":
        return spec
    return spec.with_(task=replace(spec.task, backbone_path=bit_checkpoint(spec.task.backbone)))


SPECS = {s.path: s for s in (_with_bit_backbone(s) for s in CFG.specs.values())}
