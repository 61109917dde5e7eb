"""Prompt tuning's l tokens take l rows of the backbone's position table: inputs are cut so l + input fits, and the
record says so (prompt l=200 on RoBERTa with 400-token inputs used to fail with `index 514 is out of bounds`)."""
from __future__ import annotations

from pathlib import Path

import pytest

import he_fixtures
from benchmark.backbones.registry import build_model
from benchmark.config import Run, load_config
from benchmark.errors import ConfigError
from benchmark.registry import get_method
from benchmark.spec import TaskSettings
from benchmark.tasks.glue import SST2
from benchmark.train import input_positions, reserve_prompt_positions, train_run


@pytest.mark.parametrize("backbone,positions", [("tiny-roberta", 512), ("roberta-base", 512), ("bert-base", 512),
                                                ("gpt2", 1024), ("bart-large", 1024), ("tiny-t5", None)])
def test_input_positions_of_each_table(backbone: str, positions: int | None) -> None:
    assert input_positions(build_model(backbone, meta=True).config) == positions


def test_only_prompt_reserves_and_too_long_a_prompt_is_refused() -> None:
    model = build_model("tiny-roberta", "seq-cls", meta=True, num_labels=2)
    settings = TaskSettings.of(SST2(), backbone="tiny-roberta", max_length=128)
    assert reserve_prompt_positions(settings, get_method("lora"), model) == (settings, None)
    cut, why = reserve_prompt_positions(settings, _prompt(450), model)
    assert cut.options["max_length"] == 62 and why == {"prompt_tokens": 450, "positions": 512,
                                                          "option": "max_length", "configured": 128,
                                                          "input_length": 62}
    with pytest.raises(ConfigError, match="prompt l=512 takes all 512 positions of tiny-roberta"):
        reserve_prompt_positions(settings, _prompt(512), model)


def _prompt(l: int):
    from benchmark.methods.budget import with_sizes
    return with_sizes(get_method("prompt"), {"l": l})


def test_prompt_200_on_roberta_with_400_token_inputs_trains_on_what_fits(tmp_path: Path) -> None:
    src = he_fixtures.glue(tmp_path / "src", "sst2", n=8, words=400)
    cfg = load_config({"tasks": {"sst2": {"backbone": "tiny-roberta", "data_dir": str(src)}},
                       "grid": [{"tasks": ["sst2"], "methods": ["prompt"], "budgets": ["l200"]}]})
    spec = cfg.spec(Run.of("sst2", "prompt", "l200", 1))
    spec = spec.with_(train={**spec.train, "num_epochs": 1, "batch_size": 4, "eval_batch_size": 4})
    from benchmark import registry
    data = tmp_path / "data"
    registry.get_task("sst2").prepare(spec.task, data)
    record = train_run(spec, tmp_path / "run", data_path=data)
    assert record["status"] == "ok"
    # 514 rows; the task sets the tokenizer's pad id (MiniLM's: 0) and RoBERTa's positions start after it: 513 fit
    assert record["protocol"]["prompt_positions"] == {"prompt_tokens": 200, "positions": 513, "option": "max_length",
                                                      "configured": 512, "input_length": 313}
