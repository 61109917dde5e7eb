"""The environment a record names: the lock file's digest and whether the installed set is the locked one."""
from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from benchmark.cli import main as cli
from benchmark.environment import LOCK_PATH, lock_status, locked_pins, short
from benchmark.record import provenance


def test_lock_pins_every_dependency_exactly_with_hashes() -> None:
    text = LOCK_PATH.read_text()
    pins = locked_pins(text)
    for name in ("transformers", "peft", "snakemake", "sqlalchemy", "datasets", "sympy", "networkx"):
        assert name in pins, name
    assert "torch" not in pins  # the CPU wheel or a user's CUDA build goes beside the lock
    blocks = [b for b in text.split("\n") if b and not b.startswith((" ", "#"))]
    assert blocks and all("==" in b for b in blocks)  # exact versions only
    assert text.count("--hash=sha256:") >= len(pins)


def test_markers_select_the_line_for_this_interpreter(tmp_path: Path) -> None:
    pins = locked_pins("numpy==1.0 ; python_full_version < '3.0' \\\nnumpy==2.0 ; python_full_version >= '3.0' \\\n"
                       "Foo_Bar==3.1 \\\n    --hash=sha256:00\n")
    assert pins == {"numpy": "2.0", "foo-bar": "3.1"}


def test_a_drifted_environment_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    real = metadata.version("jinja2")
    lock.write_text(f"jinja2=={real} \\\n    --hash=sha256:00\nsqlalchemy==0.0.1 \\\n    --hash=sha256:00\n"
                    "not-a-real-package-xyz==1.0 \\\n")
    status = lock_status(lock)
    assert status["sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert status["matches"] is False
    assert status["mismatches"] == ["not-a-real-package-xyz==missing (lock: 1.0)",
                                    f"sqlalchemy=={metadata.version('sqlalchemy')} (lock: 0.0.1)"]
    assert short(status) == f"lock {status['sha256'][:12]} (2 packages differ)"
    assert lock_status(tmp_path / "absent.txt")["matches"] is None


def test_every_record_carries_the_lock_digest() -> None:
    lock = provenance(seed=1, started="now")["lock"]
    assert lock["sha256"] == hashlib.sha256(LOCK_PATH.read_bytes()).hexdigest()
    assert lock["matches"] is not None and isinstance(lock["mismatches"], list)


def test_env_and_version_commands(capsys) -> None:
    assert cli(["env"]) == 0
    out = capsys.readouterr().out
    for word in ("python ", "torch ", "transformers ", "peft ", "snakemake ", "cuda ", "lock "):
        assert word in out, word
    assert hashlib.sha256(LOCK_PATH.read_bytes()).hexdigest() in out
    try:
        cli(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.startswith("petl-bench 0.1.0")
