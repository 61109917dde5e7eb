"""Budgets: a method's explicit sizes (`l30-r512`), its defaults (`default`) or a share of the backbone
(`0.5pct`), solved to the largest size whose paper-formula count fits."""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

from benchmark.errors import ConfigError
from benchmark.methods.space import FORMS, Method

SIZE = re.compile(r"^([a-z]+)(\d+)$")
PCT = re.compile(r"^(\d+(?:\.\d+)?)pct$")


def parse_budget(text: str) -> tuple[str, float | dict[str, int] | None]:
    """'default' → ('default', None); '0.5pct' → ('pct', 0.5); 'l30-r512' → ('sizes', {'l': 30, 'r': 512})."""
    if text == "default":
        return "default", None
    if m := PCT.match(text):
        return "pct", float(m.group(1))
    sizes: dict[str, int] = {}
    for part in text.split("-"):
        m = SIZE.match(part)
        if not m:
            raise ConfigError(f"budget {text!r}: expected 'default', a share like '0.5pct', or sizes like 'r8' or "
                              f"'l30-r512'")
        sizes[m.group(1)] = int(m.group(2))
    return "sizes", sizes


def with_sizes(method: Method, sizes: dict[str, int]) -> Method:
    """The method with every mod's size key replaced from `sizes`."""
    mods = tuple(m.with_size(sizes[FORMS[m.form].size_key]) if FORMS[m.form].size_key in sizes else m
                 for m in method.mods)
    return dataclasses.replace(method, mods=mods)


def check_budget(method: Method, text: str) -> None:
    """Cheap validation (no model build): the budget's size keys exist in the method."""
    kind, value = parse_budget(text)
    if kind == "sizes":
        bad = sorted(set(value) - set(method.size_keys))
        if bad:
            have = ", ".join(method.size_keys) or "none (it has no size knob; use 'default')"
            raise ConfigError(f"budget {text!r}: method {method.name!r} has no size {bad}; its sizes: {have}")
    if kind == "pct" and not method.size_keys:
        raise ConfigError(f"budget {text!r}: method {method.name!r} has no size knob to solve; use 'default'")


def sizes_of(method: Method) -> dict[str, int | list[int]]:
    """Each size key's value; a list (in compose order) when mods sharing a key differ (pa-attn+pa-ffn)."""
    by_key: dict[str, list[int]] = {}
    for m in method.mods:
        key = FORMS[m.form].size_key
        if key:
            by_key.setdefault(key, []).append(getattr(m, key))
    return {k: v[0] if len(set(v)) == 1 else v for k, v in by_key.items()}


def scaled(method: Method, t: float) -> Method:
    """Every mod's default size times t, rounded, at least 1: the method's shape kept, its size changed."""
    mods = tuple(m.with_size(max(1, round(getattr(m, FORMS[m.form].size_key) * t))) if FORMS[m.form].size_key
                 else m for m in method.mods)
    return dataclasses.replace(method, mods=mods)


def _largest_scale(method: Method, count: Callable[[Method], int], target: float, text: str) -> float:
    """The largest t with count(scaled(method, t)) ≤ target (count is non-decreasing in t)."""
    lo, hi = 0.0, 1.0
    while count(scaled(method, hi)) <= target:
        lo, hi = hi, hi * 2
        if hi > 2 ** 24:
            raise ConfigError(f"budget {text!r} cannot be reached by method {method.name!r}")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count(scaled(method, mid)) <= target else (lo, mid)
    return lo


def solve(method: Method, text: str, count: Callable[[Method], int], total: int
          ) -> tuple[Method, dict[str, int | list[int]]]:
    """Resolve a budget to sizes. Explicit sizes set every mod with that key; a share scales every mod's default
    size by one factor (MAM keeps r/l) and takes the largest whose count fits share × total. A budget below
    the method's smallest size, or a count above the backbone's, is an error before any training."""
    check_budget(method, text)
    kind, value = parse_budget(text)
    if kind == "sizes":
        zero = sorted(k for k, v in value.items() if v < 1)
        if zero:
            raise ConfigError(f"budget {text!r}: sizes {zero} must be positive integers")
        method = with_sizes(method, value)
    elif kind == "pct":
        if not 0 < value <= 100:
            raise ConfigError(f"budget {text!r}: a share must be above 0 and at most 100 (percent of the backbone)")
        target = value / 100 * total
        smallest = count(scaled(method, 0))
        if smallest > target:
            raise ConfigError(f"budget {text!r} is below the smallest size of method {method.name!r}: every size at 1 "
                              f"already trains {smallest:,} parameters, {100 * smallest / total:.4f}% of {total:,}")
        method = scaled(method, _largest_scale(method, count, target, text))
    n = count(method)
    if n > total:
        raise ConfigError(f"budget {text!r}: method {method.name!r} at {sizes_of(method)} trains {n:,} parameters, "
                          f"more than the whole backbone ({total:,}); choose smaller sizes")
    return method, sizes_of(method)
