"""Bad input stops before any training, with a message naming the key and the valid choices."""
from __future__ import annotations

import pytest

from benchmark.config import Run, load_config
from benchmark.errors import ConfigError

BASE = {"tasks": {"bit-xor": {"backbone": "tiny-bert"}}}


def grid(**block) -> dict:
    return {**BASE, "grid": [{"tasks": ["bit-xor"], "methods": ["fpt"], **block}]}


@pytest.mark.parametrize("block, words", [
    ({"tasks": ["bit-xorr"]}, ["unknown task 'bit-xorr'", "did you mean 'bit-xor'", "sst2"]),
    ({"methods": ["lroa"]}, ["unknown method 'lroa'", "lora", "fpt"]),
    ({"budgets": ["huge"]}, ["budget 'huge'", "'0.5pct'", "'r8'"]),
    ({"budgets": ["l30"]}, ["method 'fpt' has no size", "use 'default'"]),
    ({"seeds": [-1]}, ["grid[0].seeds[0]", "minimum of 0"]),
    ({"seeds": ["one"]}, ["grid[0].seeds[0]", "not of type 'integer'"]),
])
def test_bad_grid_names_key_and_choices(block: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(grid(**block))
    for w in words:
        assert w in str(e.value)


def test_unknown_backbone_names_key() -> None:
    with pytest.raises(ConfigError, match=r"tasks\.bit-xor\.backbone: unknown backbone 'minilm'.*minilm-l6"):
        load_config({"tasks": {"bit-xor": {"backbone": "minilm"}}, "grid": grid()["grid"]})


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match="config key .*'treads' was unexpected"):
        load_config({**grid(), "treads": 2})


def test_missing_data_folder_named(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    cfg = {"data_dir": str(missing), "grid": [{"tasks": ["sst2"], "methods": ["fpt"]}]}
    with pytest.raises(ConfigError, match=f"tasks.sst2.data_dir: folder {missing}/sst2 does not exist"):
        load_config(cfg)


def test_data_folder_without_splits_named(tmp_path) -> None:
    (tmp_path / "sst2").mkdir()
    cfg = {"data_dir": str(tmp_path), "grid": [{"tasks": ["sst2"], "methods": ["fpt"]}]}
    with pytest.raises(ConfigError, match="lacks train.jsonl, validation.jsonl"):
        load_config(cfg)


def test_config_method_composition_and_conflict() -> None:
    ok = {**grid(methods=["mine"]), "methods": {"mine": {"compose": [{"form": "lowrank", "site": "kv", "r": 4}]}}}
    spec = load_config(ok).spec(Run("bit-xor", "mine", "r2", 1))
    assert spec.method["compose"][0]["site"] == "kv"
    bad = {**grid(methods=["mine"]), "methods": {"mine": {"compose": [{"form": "lowrank", "site": "kv", "r": 4},
                                                                      {"form": "lowrank", "site": "kv", "r": 8}]}}}
    with pytest.raises(ConfigError, match=r"methods.mine: compose\[0\] and compose\[1\] both put form 'lowrank'"):
        load_config(bad)
    typo = {**grid(methods=["mine"]), "methods": {"mine": {"compose": [{"form": "lowrank", "site": "kv", "rank": 4}]}}}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['rank'\].*r,"):
        load_config(typo)


def test_training_values_are_typed_at_planning() -> None:
    """A wrong hyper-parameter stops at planning, not inside the optimiser; YAML's `1e-4`-is-text trap is named."""
    text = {**grid(), "tasks": {"bit-xor": {"backbone": "tiny-bert", "train": {"learning_rate": "1e-4"}}}}
    with pytest.raises(ConfigError, match=r"tasks.bit-xor.train.learning_rate: '1e-4' is not of type 'number'.*1.0e-4"):
        load_config(text)
    block = {**BASE, "grid": [{"tasks": ["bit-xor"], "methods": ["fpt"], "train": {"eval_strategy": "often"}}]}
    with pytest.raises(ConfigError, match=r"grid\[0\].train.eval_strategy: 'often' is not one of"):
        load_config(block)


def test_defaults_filled_and_grid_expanded() -> None:
    cfg = load_config({**BASE, "grid": [{"tasks": ["bit-xor"], "methods": ["fpt", "lora"], "seeds": [1, 2]},
                                        {"tasks": ["bit-xor"], "methods": ["lora"], "seeds": [2, 3]}]})
    assert cfg.raw["results"] == "results" and cfg.raw["threads"] == 1
    assert len(cfg.runs) == 5  # (fpt, lora) × (1, 2) ∪ lora × (2, 3): the union, without duplicates
    spec = cfg.spec(Run("bit-xor", "lora", "default", 3))
    assert spec.task.backbone == "tiny-bert"
    assert spec.train["learning_rate"] == 1e-3  # the task's paper recipe
