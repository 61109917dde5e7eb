"""Test-wide guards: nothing reaches the Hugging Face Hub, and shared fixtures point at ../shared/data."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "sst2" / "validation.jsonl").is_file():
        pytest.fail(f"{SHARED_DATA}/sst2 is missing: CI runs with ../shared beside the clone")
    return SHARED_DATA


def petl_bench() -> str:
    """The console script of the interpreter running the tests."""
    return str(BIN / "petl-bench")


def snakemake() -> str:
    return str(BIN / "snakemake")
