"""Like with like: does a run reproduce the paper's setup, so that a Δ against the paper's number means anything?

A run matches the paper when it used the paper's backbone, the task family's own options (their defaults are the
paper's task: 1000 bits for Bit Memory, LRA-length ListOps …) and trained at least as long as the family's recipe.
Anything else (MiniLM for GPT-2, 20 bits for 1000, 180 steps for 2000) is a different experiment: its number may
sit beside the paper's, labelled, but gets no Δ. Unknown means different: a record without a resolved config, or
a task family this installation cannot look up, never gets a Δ.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

IGNORED_OPTIONS = frozenset({"converge_at"})  # reporting thresholds: they change what is logged, not the result
LENGTH_KEYS = ("max_steps", "num_epochs")


@lru_cache(maxsize=None)
def _family(name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(options, recipe) defaults of a task family, or None when it is not installed here."""
    from benchmark import registry

    try:
        task = registry.get_task(name)
    except Exception:  # an uninstalled plugin task: its setup cannot be checked
        return None
    return dict(task.options), dict(task.recipe)


def _show(v: Any) -> str:
    return "none" if v is None else str(v)


def option_differences(config: dict[str, Any] | None) -> list[str]:
    """'n_bits 20 (paper 1000)' for every task option that differs from the family's (the paper's) default."""
    task = (config or {}).get("task") or {}
    family = _family(str(task.get("task") or task.get("name") or ""))
    if family is None:
        return ["task family unknown here"]
    defaults, _ = family
    options = task.get("options") or {}
    return [f"{k} {_show(options[k])} (paper {_show(v)})" for k, v in sorted(defaults.items())
            if k not in IGNORED_OPTIONS and k in options and options[k] != v]


def length_differences(config: dict[str, Any] | None) -> list[str]:
    """A run shorter than the family's recipe (or measured in other units) is not the paper's protocol."""
    task = (config or {}).get("task") or {}
    family = _family(str(task.get("task") or task.get("name") or ""))
    if family is None:
        return []
    _, recipe = family
    train = (config or {}).get("train") or {}
    for key in LENGTH_KEYS:
        paper = recipe.get(key)
        if paper is None or (isinstance(paper, (int, float)) and paper <= 0):
            continue
        mine = train.get(key)
        if not isinstance(mine, (int, float)) or mine <= 0:
            return [f"{key} not set (paper recipe {paper})"]
        if mine < paper:
            return [f"{key} {mine} (paper recipe {paper})"]
        return []
    return []


REHEARSAL = "rehearsal: a tiny random stand-in backbone on fixture data, a few steps (not a result)"


def is_rehearsal(config: dict[str, Any] | None) -> bool:
    """A rehearsal record (benchmark.rehearsal): its task names the stand-in backbones' folder."""
    return bool(((config or {}).get("task") or {}).get("rehearsal"))


def setup_differences(configs: Iterable[dict[str, Any] | None], backbone: str, paper_backbone: str) -> list[str]:
    """Every way these runs (one group's seeds) differ from the paper's setup; empty means like with like."""
    configs = list(configs)
    out: list[str] = [REHEARSAL] if any(is_rehearsal(c) for c in configs) else []
    if backbone != paper_backbone:
        out.append(f"backbone {backbone} (paper {paper_backbone})")
    if not configs or any(c is None for c in configs):
        out.append("setup unknown (no resolved config in the record)")
    for c in configs:
        if c is None:
            continue
        for d in option_differences(c) + length_differences(c):
            if d not in out:
                out.append(d)
    return out


def display_name(task: str, config: dict[str, Any] | None) -> str:
    """The task instance as a reader should read it: 'bit-memory (n_bits 20, token_dim 10, eval_size 200)' when
    its options are not the paper's, so nobody takes an offline stand-in for the paper's task."""
    diffs = [d.split(" (paper")[0] for d in option_differences(config) if d != "task family unknown here"]
    diffs = (["rehearsal"] if is_rehearsal(config) else []) + diffs
    return f"{task} ({', '.join(diffs)})" if diffs else task
