"""The unified design space of He et al. (2022): a method is a composition of modifications.

Each `Mod` is one point in the four dimensions — functional form, insertion, modified
representation (site) and composition — plus its size (`r` for bottlenecks and low-rank
maps, `l` for prefixes and prompts). Each functional form is a `Form` subclass that declares
its coordinates, the tensors it adds (closed-form count and extras) and whether it merges;
`Mod.check` validates any composition against those declarations, so no form restates the
space's rules. A `Method` composes mods, says whether the whole backbone trains (never which backbone
or weights: that is a task's or a baseline's), and accounts for every trainable tensor by the names the forms'
`attach` return. Named methods are presets over this space (`presets.py`); config files can
write new ones.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from benchmark.backbones.anatomy import Anatomy, anatomy, core_of
from benchmark.errors import ConfigError, unknown



@dataclass(frozen=True)
class Mod:
    """One modification Δh. Unused fields keep their defaults; each form validates what it reads."""

    form: str
    site: str = "attn"
    insertion: str = "parallel"
    composition: str = "add"
    s: float = 1.0
    r: int | None = None
    l: int | None = None
    alpha: float | None = None
    attn_kinds: tuple[str, ...] = ("self", "decoder", "cross")
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> "Mod":
        """Parse a config mapping; unknown keys go to `options` only if the form declares them. Insertion and
        composition default to the form's first declared value; site to its only one, else to `attn`."""
        if "form" not in raw:
            raise ConfigError(f"{where}: a modification needs 'form' (one of {', '.join(sorted(FORMS))})")
        form = get_form(raw["form"], where)
        known = {f.name for f in dataclasses.fields(cls)} - {"options"}
        extra = {k: v for k, v in raw.items() if k not in known}
        bad = sorted(set(extra) - set(form.options))
        if bad:
            valid = sorted(known | set(form.options))
            raise ConfigError(f"{where}: unknown key(s) {bad} for form {raw['form']!r}; valid: {', '.join(valid)}")
        kwargs = {k: v for k, v in raw.items() if k in known}
        if "site" not in kwargs:  # the only site, else attention (the space's default); never a silent guess
            if len(form.sites) > 1 and "attn" not in form.sites:
                raise ConfigError(f"{where}: form {raw['form']!r} needs 'site' (one of {', '.join(form.sites)})")
            kwargs["site"] = form.sites[0] if len(form.sites) == 1 else "attn"
        kwargs.setdefault("insertion", form.insertions[0])
        kwargs.setdefault("composition", form.compositions[0])
        if "attn_kinds" in kwargs:
            kwargs["attn_kinds"] = tuple(kwargs["attn_kinds"])
        mod = cls(**kwargs, options=extra)
        mod.check(where)
        return mod

    def check(self, where: str) -> None:
        """Reject values outside the space, naming the key and what the form declares valid."""
        form = get_form(self.form, where)
        for key, allowed in (("site", form.sites), ("insertion", form.insertions),
                             ("composition", form.compositions)):
            value = getattr(self, key)
            if value not in allowed:
                raise ConfigError(f"{where}: form {self.form!r} has no {key} {value!r}; valid: {', '.join(allowed)}")
        if form.size_key and getattr(self, form.size_key) is None:
            raise ConfigError(f"{where}: form {self.form!r} needs its size {form.size_key!r}")
        size = getattr(self, form.size_key) if form.size_key else None
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"{where}: {form.size_key}={size!r} must be a positive integer")
        form.check(self, where)

    def with_size(self, value: int) -> "Mod":
        """The same mod at another size (budget solving)."""
        key = FORMS[self.form].size_key
        return dataclasses.replace(self, **{key: value}) if key else self

    def label(self) -> str:
        """Its coordinates in one line: form@site insertion composition size (e.g. 'bottleneck@ffn parallel
        scaled s=4 r=512'); a coordinate the form offers no choice of is left out."""
        form = FORMS[self.form]
        parts = [f"{self.form}@{self.site}"]
        if len(form.insertions) > 1 or len(form.compositions) > 1:
            parts.append(self.insertion)
            comp = self.composition
            parts.append(f"{comp} s={self.s:g}" if comp == "scaled" or (comp == "learned" and self.s != 1) else comp)
            if self.alpha is not None:
                parts.append(f"alpha={self.alpha:g}")
        if form.size_key is not None:
            parts.append(f"{form.size_key}={getattr(self, form.size_key)}")
        if set(self.attn_kinds) != {"self", "decoder", "cross"}:
            parts.append("kinds=" + ",".join(self.attn_kinds))
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "options" and v is not None}
        out["attn_kinds"] = list(self.attn_kinds)
        out.update(self.options)
        return out


EXTRA_KINDS = ("biases", "layer norms", "learned scales", "reparameterisation")
"""What a form may train outside the paper's formula (He et al. Tables 10/11 leave these out); anything else
must be in `formula`, so the budget solver sees it."""


class Form:
    """A functional form: one kind of modification. Subclasses declare their coordinates and override `attach`
    and `formula`; every other hook has a default here, so the harness never asks whether a hook exists.

    Declarations (class attributes): `name`; `sites` it applies at; `insertions` and `compositions` it offers
    (the first of each is the default a config gets); `size_key` ("r", "l" or None: the knob budgets solve);
    `options` (extra config keys it reads from `mod.options`); `families` it supports (None: any backbone
    whose Anatomy has what it needs); `identity_at_init`; `mergeable` (then override `merge`).
    """

    name: ClassVar[str]
    sites: ClassVar[tuple[str, ...]]
    insertions: ClassVar[tuple[str, ...]] = ("parallel",)
    compositions: ClassVar[tuple[str, ...]] = ("add",)
    size_key: ClassVar[str | None] = None
    options: ClassVar[tuple[str, ...]] = ()
    families: ClassVar[tuple[str, ...] | None] = None
    identity_at_init: ClassVar[bool] = True
    mergeable: ClassVar[bool] = False

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]:
        """Add this mod's trainable tensors (and hooks) to `model`, or unfreeze existing ones; return their names
        relative to `model`: modules whose parameters all belong to the mod, or single parameters. The harness
        counts, saves and merges exactly what these names hold."""
        raise NotImplementedError(f"form {self.name!r} must override attach(model, anat, mod, tag)")

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int:
        """The paper's closed-form count of what this mod trains (biases, layer norms, learned scalars and a
        reparameterisation excluded: those are `extras`). Budgets are solved with it."""
        raise NotImplementedError(f"form {self.name!r} must override formula(model, anat, mod)")

    def extras(self, model: nn.Module, anat: Anatomy, mod: Mod) -> dict[str, int]:
        """Closed-form counts of trained tensors outside the formula, by kind (keys from EXTRA_KINDS)."""
        return {}

    def formula_trains(self, mod: Mod) -> bool:
        """False when the tensors the formula counts are generated rather than trained (prefix tuning's MLP
        reparameterisation): then only the extras train."""
        return True

    def unfreezes(self, model: nn.Module, anat: Anatomy, mod: Mod) -> list[nn.Parameter]:
        """Existing backbone tensors this mod trains (counted once per method, however many mods name them)."""
        return []

    def check(self, mod: Mod, where: str) -> None:
        """Reject option values or site-specific coordinates the form cannot use (the declared ones are checked
        generically before this)."""

    def starts_as_identity(self, mod: Mod) -> bool:
        """Whether this mod leaves the backbone's function unchanged before training (an adapter's init decides)."""
        return self.identity_at_init

    def why_not_mergeable(self, mod: Mod) -> str | None:
        """None when `merge` folds this mod into the frozen weights exactly, else the reason."""
        return None if self.mergeable else f"form {self.name!r} adds computation that no weight update expresses"

    def merge(self, model: nn.Module, modules: list[nn.Module]) -> None:
        """Fold the modules `attach` named into the frozen weights (only called when mergeable); the harness
        then removes them. Forms that only unfreeze existing tensors have nothing to fold."""


def starts_as_identity(mod: Mod) -> bool:
    """Whether this mod leaves the backbone's function unchanged before training."""
    return FORMS[mod.form].starts_as_identity(mod)


def why_not_mergeable(mod: Mod) -> str | None:
    """None when the mod can be folded into the frozen weights, else the reason."""
    return FORMS[mod.form].why_not_mergeable(mod)


FORMS: dict[str, Form] = {}


def form_problems(form: Any) -> list[str]:
    """What keeps an object from being a functional form (empty when it is one)."""
    if not isinstance(form, Form):
        return [f"{type(form).__name__} does not subclass benchmark.methods.space.Form"]
    problems = [f"lacks the declaration {a!r}" for a in ("name", "sites") if not hasattr(form, a)]
    for hook in ("attach", "formula"):
        if getattr(type(form), hook) is getattr(Form, hook):
            problems.append(f"does not override {hook}()")
    for key in ("sites", "insertions", "compositions", "options"):
        value = getattr(form, key, ())
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            problems.append(f"{key} must be a tuple of strings, not {value!r}")
        elif key != "options" and not value:
            problems.append(f"{key} is empty")
    if form.size_key not in (None, "r", "l"):
        problems.append(f"size_key {form.size_key!r} is not 'r', 'l' or None")
    return problems


def register_form(form: Form) -> Form:
    """Add a functional form to the space (built-ins and plugins alike)."""
    problems = form_problems(form)
    if problems:
        raise ConfigError(f"functional form {getattr(form, 'name', type(form).__name__)!r}: {'; '.join(problems)}")
    if form.name in FORMS and FORMS[form.name] is not form:
        if type(FORMS[form.name]) is type(form):  # the same class imported twice: keep the first instance
            return FORMS[form.name]
        raise ConfigError(f"functional form {form.name!r} is registered twice")
    FORMS[form.name] = form
    return form


def get_form(name: str, where: str = "method") -> Form:
    """A form by name; the first miss discovers every form through the `petl_bench.forms` entry points (the
    built-ins are found there too)."""
    if name not in FORMS:
        from benchmark import registry  # registry imports this module

        registry.forms()
    if name not in FORMS:
        raise ConfigError(f"{where}: " + str(unknown("functional form", name, FORMS)))
    return FORMS[name]


def names_in(model: nn.Module, objects: list[nn.Module | nn.Parameter]) -> list[str]:
    """The names of modules or parameters relative to `model`: what `attach` returns."""
    ids = {id(o) for o in objects}
    found = {id(m): n for n, m in model.named_modules() if id(m) in ids}
    found.update({id(p): n for n, p in model.named_parameters() if id(p) in ids})
    missing = [type(o).__name__ for o in objects if id(o) not in found]
    if missing:
        raise ValueError(f"names_in: {missing} are not part of the model (add_module them first)")
    return [found[id(o)] for o in objects]


def attn_sites(anat: Anatomy, mod: Mod) -> list:
    """The attention sub-layers a mod reaches (its `attn_kinds` filter)."""
    return [a for a in anat.attn if a.kind in mod.attn_kinds]


def require(found: list, anat: Anatomy, mod: Mod, what: str) -> list:
    """`found`, or a ConfigError when a mod reaches nothing in this backbone (an LSTM, kinds=cross on BERT)."""
    if not found:
        kinds = sorted({a.kind for a in anat.attn}) or ["none"]
        raise ConfigError(f"{mod.form}@{mod.site}: backbone {anat.family!r} has no {what} for it "
                          f"(attn_kinds={list(mod.attn_kinds)}; this backbone's attention kinds: {kinds})")
    return found


@dataclass
class Applied:
    """What `Method.apply` did, by parameter name (tied tensors once): each mod's tensors as its `attach` named
    them, the task head, and the backbone tensors that train because the whole backbone does. Iterating gives
    the trainable names."""

    trainable: dict[str, int]
    mods: list[dict[str, int]]
    modules: list[list[str]]  # per mod, the names attach returned that are modules (merge folds these)
    head: dict[str, int]
    backbone: dict[str, int]

    def __iter__(self):
        return iter(self.trainable)

    def __len__(self) -> int:
        return len(self.trainable)

    @property
    def claimed(self) -> set[str]:
        """Every tensor some mod, the head or full training accounts for."""
        return {n for m in self.mods for n in m} | set(self.head) | set(self.backbone)


def _resolve(model: nn.Module, names: list[str], where: str) -> tuple[list[nn.Parameter], list[str]]:
    """The parameters behind the names an attach returned (a module's, or a single parameter), and which names
    were modules."""
    params, modules = [], []
    for name in names:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            try:
                params.append(model.get_parameter(name))
            except AttributeError:
                raise ConfigError(f"{where}: attach returned {name!r}, which is neither a module nor a parameter of "
                                  f"the model (names are relative to the model passed to attach)") from None
            continue
        params.extend(module.parameters())
        modules.append(name)
    return params, modules


@dataclass(frozen=True)
class Method:
    """A named composition: mods and whether the whole backbone trains. It says only what trains: which backbone
    and which weights it trains on belong to the task instance or a baseline (`benchmark.baselines`)."""

    name: str
    mods: tuple[Mod, ...] = ()
    train_all: bool = False
    description: str = ""
    source: str = "petl-bench"

    @property
    def size_keys(self) -> list[str]:
        return sorted({FORMS[m.form].size_key for m in self.mods if FORMS[m.form].size_key})

    def apply(self, model: nn.Module) -> Applied:
        """Freeze the backbone, attach every mod, train the task head; account for every trainable tensor by the
        names the forms' `attach` returned."""
        anat = anatomy(model)
        for p in model.parameters():
            p.requires_grad_(self.train_all)
        for module in anat.unused:
            module.requires_grad_(False)
        returned = []
        for i, mod in enumerate(self.mods):
            names = FORMS[mod.form].attach(model, anat, mod, str(i))
            params, modules = _resolve(model, list(names), f"compose[{i}] ({mod.form}@{mod.site})")
            for p in params:
                p.requires_grad_(True)
            returned.append((params, modules))
        head = [p for module in head_modules(model) for p in module.parameters()]
        for p in head:
            p.requires_grad_(True)
        canonical = {id(p): n for n, p in model.named_parameters()}

        def named(params: list[nn.Parameter]) -> dict[str, int]:
            return {canonical[id(p)]: p.numel() for p in params}

        trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
        mods = [named(params) for params, _ in returned]
        head_named = named(head)
        taken = {n for m in mods for n in m} | set(head_named)
        backbone = {n: k for n, k in trainable.items() if n not in taken} if self.train_all else {}
        return Applied(trainable, mods, [modules for _, modules in returned], head_named, backbone)

    @property
    def identity_at_init(self) -> bool:
        """True when the method starts as the frozen backbone's function (the head aside)."""
        return all(starts_as_identity(m) for m in self.mods)

    def formula(self, model: nn.Module) -> int:
        """The paper's closed-form trainable count (Tables 10/11; the task head excluded) on a model the method
        is not applied to yet. Existing backbone tensors count once however many mods unfreeze them (T5's
        relative position bias is a position table and part of attention); full fine-tuning counts the whole
        backbone but what the model never reads (`Anatomy.unused`)."""
        anat = anatomy(model)
        total, existing = 0, {}
        for m in self.mods:
            form = FORMS[m.form]
            unfrozen = form.unfreezes(model, anat, m)
            total += form.formula(model, anat, m) - sum(p.numel() for p in unfrozen)
            existing.update({id(p): p.numel() for p in unfrozen})
        if self.train_all:
            unused = {id(p) for m in anat.unused for p in m.parameters()}
            existing.update({id(p): p.numel() for p in core_of(model).parameters() if id(p) not in unused})
        return total + sum(existing.values())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "compose": [m.to_dict() for m in self.mods], "train_all": self.train_all,
                "source": self.source, "description": self.description}


HEAD_ATTRS = ("classifier", "score", "classification_head", "output_layer")


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The task head: new, task-specific layers that every method trains (never the frozen pretrained LM head)."""
    return [getattr(model, a) for a in HEAD_ATTRS if isinstance(getattr(model, a, None), nn.Module)]


def method_from_dict(name: str, raw: dict[str, Any]) -> Method:
    """Build a method from config: `{compose: [...], train_all: bool, description: ...}`."""
    where = f"methods.{name}"
    allowed = {"compose", "train_all", "description"}
    if "init" in raw:
        raise ConfigError(f"{where}.init: {_baseline_hint(name, raw)}")
    bad = sorted(set(raw) - allowed - {"method"})
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; valid: {', '.join(sorted(allowed | {'method'}))}")
    mods = tuple(Mod.from_dict(m, f"{where}.compose[{i}]") for i, m in enumerate(raw.get("compose", [])))
    _check_conflicts(mods, where)
    return Method(name, mods, bool(raw.get("train_all", False)), raw.get("description", ""), "config")


def _baseline_hint(name: str, raw: dict[str, Any]) -> str:
    """What to write instead of a method's `init` (the form before baselines): the same row as a baseline."""
    init = str(raw["init"])
    swap = init.removeprefix("backbone:") if init.startswith("backbone:") else None
    import yaml

    what = yaml.safe_dump({k: raw[k] for k in ("compose", "train_all") if k in raw}, default_flow_style=True,
                          width=10**6).strip()
    row = f"method: {name}-trains" + (f", backbone: {swap}, init: random" if swap else f", init: {init}")
    return (f"a method says only what trains; the backbone and the weights it starts from belong to a baseline. "
            f"Write `methods: {{{name}-trains: {what}}}` (without init; or name an existing method such as full "
            f"or fpt) and `baselines: {{{name}: {{{row}}}}}`, and keep {name!r} in the grid (init is one of "
            f"pretrained, random, stats, bit; built-in baselines: `petl-bench methods`)")


def _check_conflicts(mods: tuple[Mod, ...], where: str) -> None:
    """Two mods of one form at one site would silently stack: reject, naming both."""
    seen: dict[tuple[str, str, tuple[str, ...]], int] = {}
    for i, m in enumerate(mods):
        key = (m.form, m.site, m.attn_kinds)
        if key in seen:
            raise ConfigError(f"{where}: compose[{seen[key]}] and compose[{i}] both put form {m.form!r} at site "
                              f"{m.site!r}; merge them into one modification")
        seen[key] = i
