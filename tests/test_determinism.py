"""The record's `determinism` field: what makes a GPU run unrepeatable is named; CPU runs repeat exactly."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark import determinism
from benchmark.determinism import Settings, nondeterministic, report

GPU_DEFAULTS = Settings(cuda=True, deterministic_algorithms=False, cudnn_deterministic=False,
                        cudnn_benchmark=False, cublas_workspace_config=None, tf32_matmul=False, bf16=True)


def test_cpu_is_repeatable_whatever_the_flags() -> None:
    cpu = dataclasses.replace(GPU_DEFAULTS, cuda=False, cudnn_benchmark=True)
    assert nondeterministic(cpu) == [] and report(cpu)["exact_repeat_expected"] is True


def test_gpu_defaults_name_each_nondeterministic_setting() -> None:
    why = nondeterministic(GPU_DEFAULTS)
    assert [w.split(":")[0] for w in why] == ["torch.use_deterministic_algorithms off",
                                               "CUBLAS_WORKSPACE_CONFIG unset", "cudnn.deterministic off"]
    out = report(dataclasses.replace(GPU_DEFAULTS, cudnn_benchmark=True, tf32_matmul=True))
    assert any(w.startswith("cudnn.benchmark on") for w in out["nondeterministic"])
    assert out["exact_repeat_expected"] is False and out["reduced_precision"] == ["tf32 matmul", "bf16 autocast"]


def test_train_deterministic_switches_every_setting(monkeypatch, tmp_path) -> None:
    """`train.deterministic: true` → transformers' full determinism → settings the report calls repeatable."""
    from transformers import TrainingArguments
    from transformers.trainer_utils import enable_full_determinism

    from benchmark.train import _training_args

    args = _training_args({"batch_size": 2, "learning_rate": 1e-3, "deterministic": True}, tmp_path, 0, 1, True,
                          TrainingArguments)
    assert args.full_determinism is True
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        enable_full_determinism(0)
        now = determinism.current(bf16=True)
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]
    assert nondeterministic(dataclasses.replace(now, cuda=True)) == []


@pytest.mark.parametrize("flag", ["deterministic_algorithms", "cudnn_deterministic"])
def test_each_switch_matters(flag) -> None:
    fixed = dataclasses.replace(GPU_DEFAULTS, deterministic_algorithms=True, cudnn_deterministic=True,
                                cublas_workspace_config=":4096:8")
    assert nondeterministic(fixed) == []
    assert len(nondeterministic(dataclasses.replace(fixed, **{flag: False}))) == 1
