"""The software environment a run happens in, checked against the project's lock file.

A record names its environment by the lock file's digest *and* by whether the installed packages really are the
locked ones: a digest alone would vouch for a venv that drifted (a hand-installed upgrade, a wheel install outside
the checkout). torch is not in the lock (CPU wheel or a user's CUDA build), so it is reported by version beside it.
"""
from __future__ import annotations

import hashlib
import platform
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
LOCK_PATH = PROJECT_DIR / "requirements" / "lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
REPORTED = ("torch", "transformers", "peft", "accelerate", "datasets", "snakemake", "sqlalchemy")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins(text: str) -> dict[str, str]:
    """`name -> version` for the lock's lines whose environment marker holds on this interpreter."""
    from packaging.markers import Marker

    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = _PIN.match(line.strip())
        if m and (m.group(3) is None or Marker(m.group(3)).evaluate()):
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=4)
def lock_status(lock_path: Path = LOCK_PATH) -> dict[str, Any]:
    """The lock's sha256 and whether every locked package is installed at its locked version.

    `matches` is None when there is no lock to compare with (petl-bench installed from a wheel, outside a checkout).
    """
    if not lock_path.is_file():
        return {"sha256": None, "matches": None, "mismatches": [], "note": f"no lock file at {lock_path}"}
    text = lock_path.read_text()
    mismatches = []
    for name, want in sorted(locked_pins(text).items()):
        have = _installed(name)
        if have != want:
            mismatches.append(f"{name}=={have or 'missing'} (lock: {want})")
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "matches": not mismatches,
            "mismatches": mismatches}


def short(status: dict[str, Any]) -> str:
    """One line for a page or a log: 'lock 909abac5c84d (installed set matches)'."""
    if status.get("sha256") is None:
        return "no lock (installed outside a checkout)"
    n = len(status.get("mismatches") or [])
    return f"lock {status['sha256'][:12]} ({'installed set matches' if status.get('matches') else f'{n} packages differ'})"


def report() -> str:
    """`petl-bench env`: the text to paste into a bug report."""
    import torch

    lock = lock_status()
    lines = [f"petl-bench {_installed('petl-bench') or 'not installed'} ({PROJECT_DIR})",
             f"python {platform.python_version()} ({platform.platform()})"]
    for name in REPORTED:
        lines.append(f"{name} {_installed(name) or 'not installed'}")
    cuda = torch.version.cuda
    lines.append(f"cuda {cuda or 'none (CPU build)'}; GPUs visible: {torch.cuda.device_count() if cuda else 0}")
    lines.append(short(lock) + (f"; sha256 {lock['sha256']}" if lock["sha256"] else ""))
    lines += [f"  differs: {m}" for m in lock["mismatches"]]
    return "\n".join(lines)
