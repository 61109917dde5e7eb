"""Methods and tasks by name, discovered through entry points (built-ins and plugins alike).

Entry-point groups: `petl_bench.methods` (a `Method`, or a mapping name → Method) and
`petl_bench.tasks` (a `Task` subclass). Two distributions claiming one name is an error
naming both, never a silent shadowing.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Mapping

from benchmark.errors import ConfigError, unknown
from benchmark.methods.space import Method
from benchmark.tasks.base import Task


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def _collect(group: str) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must name itself, not take the harness down silently
            raise ConfigError(f"plugin entry point {ep.name!r} ({ep.value}) in group {group} from "
                              f"{_origin(ep)} failed to import: {type(e).__name__}: {e}") from e
        items = obj.items() if isinstance(obj, Mapping) else [(ep.name, obj)]
        for name, value in items:
            if name in found and found[name][1] != _origin(ep):
                raise ConfigError(f"{group}: name {name!r} is claimed by both {found[name][1]} and {_origin(ep)}")
            found[name] = (value, _origin(ep))
    return found


@lru_cache(maxsize=1)
def methods() -> dict[str, Method]:
    """Every installed method, with `source` set to the distribution that provides it."""
    out = {}
    for name, (method, origin) in _collect("petl_bench.methods").items():
        out[name] = dataclasses.replace(method, name=name, source=origin)
    return out


@lru_cache(maxsize=1)
def tasks() -> dict[str, Task]:
    """Every installed task family, instantiated."""
    return {name: cls() for name, (cls, _) in _collect("petl_bench.tasks").items()}


def get_method(name: str, extra: Mapping[str, Method] | None = None) -> Method:
    pool = {**methods(), **(extra or {})}
    if name not in pool:
        raise unknown("method", name, pool)
    return pool[name]


def get_task(name: str) -> Task:
    pool = tasks()
    if name not in pool:
        raise unknown("task", name, pool)
    return pool[name]
