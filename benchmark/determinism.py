"""What makes a run repeatable, and what does not: the record states it so a reader knows whether two seeds'
spread is all seed, or partly the GPU.

On CPU, with a fixed thread count (recorded), every op this harness uses is deterministic: the same seed gives
the same metrics, bit for bit (tests/test_resume.py checks it). On CUDA, several defaults trade repeatability for
speed. `train.deterministic: true` switches them off (transformers' `full_determinism`: deterministic algorithms,
cuDNN deterministic and no benchmarking, a fixed cuBLAS workspace), at some cost in speed.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    """The switches that decide GPU repeatability, as they stood when the run trained."""

    cuda: bool
    deterministic_algorithms: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    cublas_workspace_config: str | None
    tf32_matmul: bool
    bf16: bool


def current(bf16: bool = False) -> Settings:
    """Read the settings from torch and the environment."""
    import torch

    return Settings(
        cuda=torch.cuda.is_available(),
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32),
        bf16=bf16,
    )


def nondeterministic(s: Settings) -> list[str]:
    """Each setting that lets two runs with the same seed differ, with why (empty: bitwise repeatable)."""
    if not s.cuda:
        return []
    found = []
    if not s.deterministic_algorithms:
        found.append("torch.use_deterministic_algorithms off: CUDA kernels that accumulate with atomics "
                     "(embedding and index/scatter backward, attention backward) sum in a varying order")
    if s.cublas_workspace_config not in (":4096:8", ":16:8"):
        found.append("CUBLAS_WORKSPACE_CONFIG unset: cuBLAS may choose reductions that differ run to run")
    if s.cudnn_benchmark:
        found.append("cudnn.benchmark on: convolution algorithms are picked by timing, so may differ per run")
    if not s.cudnn_deterministic:
        found.append("cudnn.deterministic off: cuDNN may use nondeterministic convolution algorithms")
    return found


def report(s: Settings) -> dict[str, Any]:
    """The record's `determinism` field: the settings, what is nondeterministic, and whether a repeat with the
    same seed is expected to match exactly. TF32 and bf16 change precision, not repeatability: noted apart."""
    why = nondeterministic(s)
    precision = [name for name, on in (("tf32 matmul", s.cuda and s.tf32_matmul), ("bf16 autocast", s.bf16)) if on]
    return {**asdict(s), "nondeterministic": why, "exact_repeat_expected": not why,
            "reduced_precision": precision}
