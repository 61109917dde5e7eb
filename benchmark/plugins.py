"""Plugins at run time: which methods come from outside the harness, a preflight that holds a plugin's run to
the method contract's counting rules before any training, errors that name the package, and the listing
`petl-bench plugins` prints. The contract itself is `benchmark.methods.contract` (one for built-ins and
plugins alike)."""
from __future__ import annotations

import logging
from typing import Any, Callable

from torch import nn

from benchmark import registry
from benchmark.errors import ConfigError
from benchmark.methods.contract import BACKBONES, Broken, blame, check_method, preflight_count, signature_problems
from benchmark.methods.space import Method

__all__ = ["BACKBONES", "check_method", "guarded", "list_plugins", "preflight", "uses_plugin"]
log = logging.getLogger("petl_bench.plugins")


def preflight(method: Method, backbone: str) -> None:
    """Before a plugin's run trains: it must load, apply and count as it declares (on the meta device, so any
    backbone checks in a second). Built-in methods are held to the whole contract by the test-suite instead."""
    if isinstance(method, registry.BrokenMethod):
        raise registry.PluginError(method.problem)
    if not uses_plugin(method):
        return
    package = blame(method)
    problems = signature_problems(method)
    if problems:
        raise registry.PluginError(f"method {method.name!r} [{package}]: {'; '.join(problems)}")
    try:
        model = _meta(backbone)
    except Exception as e:  # not the plugin's fault (a backbone without a shipped config, offline): train on
        log.warning("cannot build %s on the meta device to preflight %s: %s", backbone, method.name, e)
        return
    try:
        preflight_count(method, model)
    except Broken as e:
        raise registry.PluginError(f"method {method.name!r} [{package}]: {e.rule} rule broken on {backbone}: "
                                   f"{e}") from e


def _meta(backbone: str) -> nn.Module:
    from benchmark.backbones.registry import build_model

    return build_model(backbone, "base", meta=True)


def uses_plugin(method: Method) -> bool:
    """Whether a method or any form it composes comes from outside the harness."""
    origin = registry.method_origin(method.name)
    if origin is not None and not origin.builtin and str(origin) == method.source:
        return True
    return any((o := registry.form_origin(m.form)) is not None and not o.builtin for m in method.mods)


def guarded(method: Method, stage: str, fn: Callable[[], Any]) -> Any:
    """Run one step of a plugin's run; an exception names the plugin's package (a wrong signature, say)."""
    try:
        return fn()
    except ConfigError:
        raise
    except Exception as e:
        if not uses_plugin(method):
            raise
        raise registry.PluginError(f"method {method.name!r} [{blame(method)}] failed in {stage}: "
                                   f"{type(e).__name__}: {e}") from e


def list_plugins() -> str:
    """The table `petl-bench plugins` prints: methods, forms and tasks with their package and version."""
    lines = ["methods:"]
    for name, m in sorted(registry.methods().items()):
        forms = ",".join(dict.fromkeys(x.form for x in m.mods)) or ("all tensors" if m.train_all else "head only")
        lines.append(f"  {name:<22}{m.source:<22}{forms}")
    for name, m in sorted(registry.broken_methods().items()):
        lines.append(f"  {name:<22}{m.source:<22}BROKEN: {m.problem}")
    lines.append("forms:")
    for name, origin in sorted(registry.forms().items()):
        lines.append(f"  {name:<22}{origin}")
    lines.append("tasks:")
    for name in sorted(registry.tasks()):
        lines.append(f"  {name:<22}{registry.task_origin(name)}")
    for name, error in sorted(registry.broken_tasks().items()):
        lines.append(f"  {name:<22}BROKEN: {error}")
    return "\n".join(lines)
