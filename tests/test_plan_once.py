"""One resolved run is planned once, whatever budget names reach it; one dataset is prepared once."""
from __future__ import annotations

from benchmark.config import Run, load_config


def grid(budgets: list[str]) -> dict:
    return {"grid": [{"tasks": ["sst2"], "methods": ["prefix"], "budgets": budgets, "seeds": [1]}]}


def test_a_size_budget_equal_to_the_preset_size_is_an_alias_of_default() -> None:
    cfg = load_config(grid(["l200", "l30", "default", "0.5pct"]))
    assert [r.budget for r in cfg.runs] == ["l30", "default", "0.5pct"]  # config order; the alias dropped
    assert cfg.aliases == {Run.of("sst2", "prefix", "l200", 1): Run.of("sst2", "prefix", "default", 1)}
    assert set(cfg.specs) == set(cfg.runs)


def test_different_recipes_or_sizes_stay_separate_runs() -> None:
    raw = grid(["default"])
    raw["grid"].append({"tasks": ["sst2"], "methods": ["prefix"], "budgets": ["l200"], "seeds": [1],
                        "train": {"learning_rate": 3.0e-4}})  # sst2 recipe: 1e-4
    cfg = load_config(raw)
    assert cfg.aliases == {} and len(cfg.runs) == 2
    assert load_config(grid(["l199", "default"])).aliases == {}


def test_evaluation_only_options_do_not_change_the_prepared_data() -> None:
    def spec(options: dict):
        raw = {"tasks": {"c": {"task": "cifar10", "options": options}},
               "grid": [{"tasks": ["c"], "methods": ["fpt"]}]}
        return load_config(raw).task_spec("c")
    base = spec({})
    assert spec({"converge_at": [60.0]}).data_digest == base.data_digest
    assert spec({"augment": False}).data_digest != base.data_digest
