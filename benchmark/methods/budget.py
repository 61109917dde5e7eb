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


def solve(method: Method, text: str, count: Callable[[Method], int], total: int) -> tuple[Method, dict[str, int]]:
    """Resolve a budget to sizes. For a share, every size key scales with one integer (the first key's value)
    and the largest value whose count ≤ share × total wins."""
    check_budget(method, text)
    kind, value = parse_budget(text)
    defaults = {FORMS[m.form].size_key: getattr(m, FORMS[m.form].size_key) for m in method.mods
                if FORMS[m.form].size_key}
    if kind == "default":
        return method, defaults
    if kind == "sizes":
        return with_sizes(method, value), {**defaults, **value}
    target = value / 100 * total
    lead = method.size_keys[0]

    def sizes_at(x: int) -> dict[str, int]:
        return {k: max(1, round(v * x / defaults[lead])) for k, v in defaults.items()}

    if count(with_sizes(method, sizes_at(1))) > target:
        raise ConfigError(f"budget {text!r} is below method {method.name!r}'s smallest size "
                          f"({count(with_sizes(method, sizes_at(1)))} trainable of {total})")
    lo, hi = 1, 2
    while count(with_sizes(method, sizes_at(hi))) <= target:
        lo, hi = hi, hi * 2
        if hi > 1 << 20:
            raise ConfigError(f"budget {text!r} cannot be reached by method {method.name!r}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(with_sizes(method, sizes_at(mid))) <= target else (lo, mid)
    return with_sizes(method, sizes_at(lo)), sizes_at(lo)
