"""Like with like: a run matches the paper's setup only with its backbone, the family's options and length."""
from __future__ import annotations

from leaderboard.comparable import display_name, setup_differences


def spec(task: str = "bit-memory", options: dict | None = None, **train: object) -> dict:
    return {"task": {"name": task, "task": task, "options": options or {}}, "train": train}


def test_the_papers_setup_matches() -> None:
    paper = spec(options={"n_bits": 1000, "token_dim": 50, "converge_at": [50.0]}, max_steps=50000)
    assert setup_differences([paper, paper], "gpt2", "gpt2") == []  # converge_at only changes what is logged


def test_the_mini_preset_differs_in_backbone_task_size_and_length() -> None:
    mini = spec(options={"n_bits": 20, "token_dim": 10, "eval_size": 200}, max_steps=100)
    assert setup_differences([mini], "minilm-l6", "gpt2") == [
        "backbone minilm-l6 (paper gpt2)", "eval_size 200 (paper 1000)", "n_bits 20 (paper 1000)",
        "token_dim 10 (paper 50)", "max_steps 100 (paper recipe 2000)"]
    assert display_name("bit-memory", mini) == "bit-memory (eval_size 200, n_bits 20, token_dim 10)"
    assert display_name("bit-memory", spec(max_steps=100)) == "bit-memory"


def test_unknown_means_different() -> None:
    assert setup_differences([None], "gpt2", "gpt2") == ["setup unknown (no resolved config in the record)"]
    assert setup_differences([spec("no-such-task")], "gpt2", "gpt2") == ["task family unknown here"]
    assert setup_differences([], "gpt2", "gpt2") == ["setup unknown (no resolved config in the record)"]
    # one seed in another setup is enough to refuse the Δ for the group
    assert setup_differences([spec(max_steps=2000), spec(options={"n_bits": 20, "token_dim": 10}, max_steps=2000)],
                             "gpt2", "gpt2") == ["n_bits 20 (paper 1000)", "token_dim 10 (paper 50)"]


def test_training_length_in_other_units_is_a_difference() -> None:
    assert setup_differences([spec("sst2", max_steps=300)], "roberta-base", "roberta-base") == [
        "num_epochs not set (paper recipe 10)"]
    assert setup_differences([spec("sst2", num_epochs=10)], "roberta-base", "roberta-base") == []
