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


def install_example_plugin() -> None:
    """examples/petl-ia3 installed into the running interpreter (editable, no deps, no network), once across
    concurrent sessions, and visible to the registry."""
    import fcntl
    import importlib
    import importlib.util
    import subprocess
    from importlib.metadata import PackageNotFoundError, distribution

    from benchmark import registry

    example = REPO / "examples" / "petl-ia3"
    try:
        distribution("petl-ia3")
    except PackageNotFoundError:
        with open(Path(sys.prefix) / ".petl-ia3-install.lock", "w") as lock:  # sessions share one interpreter
            fcntl.flock(lock, fcntl.LOCK_EX)
            importlib.invalidate_caches()
            try:
                distribution("petl-ia3")
            except PackageNotFoundError:
                subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                                "-e", str(example)], check=True, timeout=300)
    importlib.invalidate_caches()
    if importlib.util.find_spec("petl_ia3") is None:  # an editable finder is only active in new interpreters
        sys.path.insert(0, str(example))
    registry.clear_caches()
