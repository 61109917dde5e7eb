"""`petl-bench` exits with code 2 and an actionable message on bad input, before any training."""
from __future__ import annotations

import pytest

from benchmark.cli import main


@pytest.mark.parametrize("argv, words", [
    (["--task", "bit-xr"], ["unknown task 'bit-xr'", "did you mean 'bit-xor'"]),
    (["--task", "bit-xor", "--method", "lorra"], ["unknown method 'lorra'", "did you mean 'lora'"]),
    (["--task", "bit-xor", "--backbone", "gpt3"], ["unknown backbone 'gpt3'", "minilm-l6"]),
    (["--task", "bit-xor", "--budget", "big"], ["budget 'big'"]),
    (["--task", "bit-xor", "--seed", "-3"], ["--seed: -3 is not a non-negative integer"]),
    (["--task", "sst2", "--data-dir", "/no/such/folder"], ["tasks.sst2.data_dir: folder /no/such/folder does not exist"]),
    (["--task", "bit-xor", "--set", "max_stepz=3"], ["tasks.bit-xor.train: unknown key(s) ['max_stepz']"]),
    (["--task", "bit-xor", "--set", "batch_size=many"], ["tasks.bit-xor.train.batch_size: 'many' is not of type"]),
    (["--task", "bit-xor", "--set", "max_steps"], ["--set max_steps: expected KEY=VALUE"]),
])
def test_bad_train_input(tmp_path, capsys, argv: list[str], words: list[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
    assert not out.exists(), "nothing may be written before the input is valid"


def test_methods_lists_coordinates(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "lowrank@attn" in out and "unfreeze@layer_norm" in out and "[init: random]" in out


def test_set_reads_exponent_numbers() -> None:
    """`--set learning_rate=1e-4` is a float (YAML 1.1 alone would leave it text and fail inside the optimiser)."""
    from benchmark.cli import _scalar
    assert _scalar("1e-4") == 1e-4 and _scalar("200") == 200 and isinstance(_scalar("200"), int)
    assert _scalar("true") is True and _scalar("constant") == "constant" and _scalar("null") is None
