# Grid expansion and helpers shared by the rules. Everything is computed by benchmark.config.
import json
from benchmark import registry
from benchmark.config import Run

RESULTS = CFG.raw["results"]
RESOURCES = CFG.raw["resources"]
RUNS = CFG.runs

wildcard_constraints:
    task=r"[^/]+",
    method=r"[^/]+",
    budget=r"[^/]+",
    seed=r"\d+",


def run_of(w) -> Run:
    return Run(w.task, w.method, w.budget, int(w.seed))


def record_path(run: Run) -> str:
    return f"{RESULTS}/runs/{run.path}/record.json"


def needs_data(task: str) -> bool:
    return registry.get_task(CFG.task_family(task)).needs_data


def data_dir(task: str) -> str:
    return f"{RESOURCES}/data/{task}"
