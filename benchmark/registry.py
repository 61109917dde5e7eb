"""Methods, tasks and functional forms by name, discovered through entry points (built-ins and plugins alike).

Entry-point groups:
- `petl_bench.methods`: a `Method`, or a mapping name → Method (the entry-point name names a single Method);
- `petl_bench.tasks`: a `Task` subclass;
- `petl_bench.forms`: a functional form (an instance of a `benchmark.methods.space.Form` subclass), or a
  mapping name → form. The harness's own forms are registered this way too; a plugin's method may also
  register its forms on import, and the group makes a form visible even when no method uses it.

Two distributions claiming one name is an error naming both, never a silent shadowing. A plugin that fails
to import names its package and is fenced off: its entry-point name resolves to a `BrokenMethod` that plans
like any method but fails its runs with the import error, so the rest of a grid still runs. The harness's
own distribution is never fenced off: a broken built-in is a bug to see at once.
"""
from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Iterator, Mapping

from benchmark.errors import ConfigError, unknown
from benchmark.methods.space import FORMS, Method, form_problems, register_form
from benchmark.tasks.base import Task

log = logging.getLogger("petl_bench.registry")
HARNESS = "petl-bench"
GROUPS = ("petl_bench.methods", "petl_bench.tasks", "petl_bench.forms")
REINSTALL = (" (an entry point just added to a pyproject.toml is seen only after reinstalling its package: "
             "pip install --no-deps --no-build-isolation -e <its folder>)")
URL_LABELS = ("homepage", "home", "source", "source code", "repository", "code", "documentation")


class PluginError(ConfigError):
    """A plugin broke a rule of the harness (import, signature, count, finite outputs); names its package."""


@dataclass(frozen=True)
class Origin:
    """Where a method, task or form comes from: its distribution, version and homepage (for the leaderboard)."""

    package: str
    version: str
    homepage: str | None = None
    entry_point: str | None = None

    @property
    def builtin(self) -> bool:
        return self.package == HARNESS

    def __str__(self) -> str:
        return f"{self.package} {self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"package": self.package, "version": self.version, "homepage": self.homepage,
                "entry_point": self.entry_point, "builtin": self.builtin}


@dataclass(frozen=True)
class BrokenMethod(Method):
    """Stands in for a plugin method that failed to load: it plans, and every run of it fails naming why."""

    problem: str = ""

    def apply(self, model: Any) -> list[str]:
        raise PluginError(self.problem)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "broken": self.problem}


def homepage(meta: Any) -> str | None:
    """The distribution's homepage: `Home-page`, else a Project-URL labelled like a homepage or source."""
    if meta.get("Home-page"):
        return meta["Home-page"]
    urls = [u.split(",", 1) for u in meta.get_all("Project-URL") or [] if "," in u]
    by_label = {label.strip().lower(): url.strip() for label, url in urls}
    for label in URL_LABELS:
        if label in by_label:
            return by_label[label]
    return urls[0][1].strip() if urls else None


def _origin(ep: EntryPoint) -> Origin:
    dist = ep.dist
    if dist is None:
        return Origin(ep.value, "unknown", None, ep.value)
    return Origin(dist.name, dist.version, homepage(dist.metadata), f"{ep.name} = {ep.value}")


def _load(ep: EntryPoint, group: str) -> Any:
    """Import one entry point; a failure becomes a PluginError naming the package."""
    try:
        return ep.load()
    except Exception as e:  # a broken plugin must name itself, not take the harness down silently
        raise PluginError(f"plugin entry point {ep.name!r} ({ep.value}) in group {group} from {_origin(ep)} "
                          f"failed to import: {type(e).__name__}: {e}") from e


@dataclass
class Found:
    """The result of scanning one group: working items with their origins, and fenced-off broken names."""

    items: dict[str, tuple[Any, Origin]]
    broken: dict[str, tuple[PluginError, Origin]]


def _claim(found: dict[str, tuple[Any, Origin]], group: str, name: str, value: Any, origin: Origin) -> None:
    if name in found and found[name][1].package != origin.package:
        raise ConfigError(f"{group}: name {name!r} is claimed by both {found[name][1]} and {origin}")
    found[name] = (value, origin)


def _collect(group: str) -> Found:
    out = Found({}, {})
    for ep in entry_points(group=group):
        origin = _origin(ep)
        try:
            obj = _load(ep, group)
        except PluginError as e:
            if origin.builtin:
                raise
            log.warning("%s", e)
            _claim(out.broken, group, ep.name, e, origin)
            continue
        items = obj.items() if isinstance(obj, Mapping) else [(ep.name, obj)]
        for name, value in items:
            _claim(out.items, group, name, value, origin)
    clash = sorted(set(out.items) & set(out.broken))
    for name in clash:
        if out.items[name][1].package != out.broken[name][1].package:
            raise ConfigError(f"{group}: name {name!r} is claimed by both {out.items[name][1]} and "
                              f"{out.broken[name][1]}")
    return out


def _check_method(name: str, value: Any, origin: Origin) -> Method | BrokenMethod:
    """A plugin's entry point must give a Method; anything else is fenced off with the reason."""
    if isinstance(value, Method):
        return dataclasses.replace(value, name=name, source=str(origin))
    problem = (f"method {name!r} from {origin}: the entry point gives a {type(value).__name__}, not a "
               f"benchmark.methods.Method (build one with method_from_dict or Method(...))")
    if origin.builtin:
        raise ConfigError(problem)
    log.warning("%s", problem)
    return BrokenMethod(name, source=str(origin), problem=problem)


@lru_cache(maxsize=1)
def _methods() -> tuple[dict[str, Method], dict[str, Origin]]:
    forms()  # standalone forms first, so a method's config can name them
    found = _collect("petl_bench.methods")
    methods: dict[str, Method] = {}
    origins: dict[str, Origin] = {}
    for name, (value, origin) in found.items.items():
        methods[name] = _check_method(name, value, origin)
        origins[name] = origin
    for name, (error, origin) in found.broken.items():
        methods[name] = BrokenMethod(name, source=str(origin), problem=str(error))
        origins[name] = origin
    forms.cache_clear()  # importing method plugins may have registered more forms
    return methods, origins


def methods() -> dict[str, Method]:
    """Every working installed method, with `source` set to "<distribution> <version>"."""
    return {n: m for n, m in _methods()[0].items() if not isinstance(m, BrokenMethod)}


def broken_methods() -> dict[str, BrokenMethod]:
    """Plugin methods that failed to load or are not Methods, each carrying the reason."""
    return {n: m for n, m in _methods()[0].items() if isinstance(m, BrokenMethod)}


def method_origin(name: str) -> Origin | None:
    """The distribution that provides method `name` (None for config-defined methods)."""
    return _methods()[1].get(name)


@lru_cache(maxsize=1)
def forms() -> dict[str, Origin]:
    """Every functional form, with the distribution that defines it (built-ins are entry points too). Loading
    this registers the forms; one that is not a `Form` or is misnamed is fenced off with a warning (methods
    naming it fail with "unknown form"), except a built-in, which is a bug to see at once."""
    found = _collect("petl_bench.forms")
    declared: dict[str, Origin] = {}
    for name, (form, origin) in found.items.items():
        problems = form_problems(form)
        if not problems and form.name != name:
            problems = [f"the object is named {form.name!r}"]
        if problems:
            message = f"functional form entry point {name!r} from {origin}: {'; '.join(problems)}"
            if origin.builtin:
                raise ConfigError(message)
            log.warning("%s; ignored", message)
            continue
        register_form(form)
        declared[name] = origin
    return {name: declared.get(name) or _module_origin(type(form).__module__) for name, form in FORMS.items()}


def _module_origin(module: str) -> Origin:
    """The distribution that installs a module (forms registered as an import side effect): the one whose
    entry points live in the same top-level package (cheaper than scanning every installed file list)."""
    top = module.split(".")[0]
    for group in GROUPS:
        for ep in entry_points(group=group):
            if ep.value.split(":")[0].split(".")[0] == top and ep.dist is not None:
                return dataclasses.replace(_origin(ep), entry_point=None)
    return Origin(top, "unknown")


def form_origin(name: str) -> Origin | None:
    found = forms()
    if name in FORMS and name not in found:  # registered since (a method plugin imported later)
        forms.cache_clear()
        found = forms()
    return found.get(name)


def load_plugins() -> None:
    """Import every method and form plugin, so that config (and a run's spec) can name their forms."""
    _methods()
    forms()


@lru_cache(maxsize=1)
def _tasks() -> tuple[dict[str, type[Task]], dict[str, Origin], dict[str, tuple[PluginError, Origin]]]:
    found = _collect("petl_bench.tasks")
    classes, origins = {}, {}
    for name, (cls, origin) in found.items.items():
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            problem = PluginError(f"task {name!r} from {origin}: the entry point gives a {type(cls).__name__}, "
                                  f"not a benchmark.tasks.base.Task subclass")
            if origin.builtin:
                raise problem
            found.broken[name] = (problem, origin)
            continue
        classes[name], origins[name] = cls, origin
    return classes, origins, found.broken


@lru_cache(maxsize=1)
def tasks() -> dict[str, Task]:
    """Every installed, working task family, instantiated."""
    return {name: cls() for name, cls in _tasks()[0].items()}


@contextmanager
def trying_task(task: Task) -> Iterator[None]:
    """Make a task that is not installed yet visible by name for the duration (the task contract of a task being
    written, before its entry point exists); a name an installed task holds is refused."""
    pool = tasks()
    if task.name in pool and type(pool[task.name]) is not type(task):
        raise ConfigError(f"task name {task.name!r} is taken by {task_origin(task.name)}; pick another")
    added = task.name not in pool
    pool[task.name] = task
    try:
        yield
    finally:
        if added:
            pool.pop(task.name, None)


def task_origin(name: str) -> Origin | None:
    return _tasks()[1].get(name)


def broken_tasks() -> dict[str, PluginError]:
    return {name: error for name, (error, _) in _tasks()[2].items()}


def get_method(name: str, extra: Mapping[str, Method] | None = None) -> Method:
    """A method by name (config-defined ones in `extra` win). A broken plugin's name gives its `BrokenMethod`."""
    pool = {**_methods()[0], **(extra or {})}
    if name not in pool:
        error = unknown("method", name, [n for n, m in pool.items() if not isinstance(m, BrokenMethod)])
        raise ConfigError(f"{error}{REINSTALL}")
    return pool[name]


def get_task(name: str) -> Task:
    """A task by name; a task plugin that failed to load raises its own error (tasks shape the plan itself)."""
    broken = broken_tasks()
    if name in broken:
        raise broken[name]
    pool = tasks()
    if name not in pool:
        raise ConfigError(f"{unknown('task', name, pool)}{REINSTALL}")
    return pool[name]


def provenance(method: Method) -> dict[str, Any]:
    """What the run record keeps about where a method comes from (the leaderboard marks and links plugin rows):
    its package, version and homepage, whether it is a plugin, and the distributions of the functional forms
    it composes (a config-defined method may compose a plugin's form)."""
    origin = method_origin(method.name)
    if origin is not None and str(origin) != method.source:
        origin = None  # a config-defined method under an installed method's name
    used = {m.form: form_origin(m.form) for m in method.mods}
    form_plugins = sorted({o.package for o in used.values() if o is not None and not o.builtin})
    return {"package": origin.package if origin else None,
            "version": origin.version if origin else None,
            "homepage": origin.homepage if origin else None,
            "entry_point": origin.entry_point if origin else None,
            "plugin": bool(origin and not origin.builtin) or bool(form_plugins),
            "forms": {name: str(o) for name, o in used.items() if o is not None}}


def clear_caches() -> None:
    """Forget what was discovered (tests install plugins while running)."""
    for fn in (_methods, forms, _tasks, tasks):
        fn.cache_clear()
