"""The unified design space of He et al. (2022): a method is a composition of modifications.

Each `Mod` is one point in the four dimensions — functional form, insertion, modified
representation (site) and composition — plus its size (`r` for bottlenecks and low-rank
maps, `l` for prefixes and prompts). A `Method` composes mods, says which backbone
tensors it unfreezes, and how the backbone is initialised (FPT's baselines). Named
methods are presets over this space (`presets.py`); config files can write new ones.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn

from benchmark.backbones.anatomy import Anatomy, anatomy, core_of
from benchmark.errors import ConfigError, unknown

INSERTIONS = ("parallel", "sequential")
COMPOSITIONS = ("add", "scaled", "learned", "gated")
INITS = ("pretrained", "random", "stats", "bit")  # bit: Lu et al.'s Bit-Memory-pretrained backbone
SWAP = "backbone:"  # init "backbone:<name>": the method replaces the task's backbone (ViT-init, LSTM)


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
        """Parse a config mapping; unknown keys go to `options` only if the form declares them."""
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
        kwargs.setdefault("composition", getattr(form, "default_composition", "add"))
        if "attn_kinds" in kwargs:
            kwargs["attn_kinds"] = tuple(kwargs["attn_kinds"])
        mod = cls(**kwargs, options=extra)
        mod.check(where)
        return mod

    def check(self, where: str) -> None:
        """Reject values outside the space, naming the key."""
        if self.insertion not in INSERTIONS:
            raise ConfigError(f"{where}: insertion {self.insertion!r} is not one of {INSERTIONS}")
        if self.composition not in COMPOSITIONS:
            raise ConfigError(f"{where}: composition {self.composition!r} is not one of {COMPOSITIONS}")
        form = FORMS[self.form]
        if self.site not in form.sites:
            raise ConfigError(f"{where}: form {self.form!r} does not apply at site {self.site!r}; "
                              f"valid sites: {', '.join(form.sites)}")
        if form.size_key and getattr(self, form.size_key) is None:
            raise ConfigError(f"{where}: form {self.form!r} needs its size {form.size_key!r}")
        size = getattr(self, form.size_key) if form.size_key else None
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"{where}: {form.size_key}={size!r} must be a positive integer")
        extra = getattr(form, "check", None)
        if extra is not None:
            extra(self, where)

    def with_size(self, value: int) -> "Mod":
        """The same mod at another size (budget solving)."""
        key = FORMS[self.form].size_key
        return dataclasses.replace(self, **{key: value}) if key else self

    def label(self) -> str:
        """Its coordinates in one line: form@site insertion composition size (e.g. 'bottleneck@ffn parallel
        scaled s=4 r=512')."""
        form = FORMS[self.form]
        parts = [f"{self.form}@{self.site}"]
        if form.size_key is not None and getattr(form, "coordinates", True):  # prompt has no insertion/composition
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


class Form(Protocol):
    """A functional form. `attach` adds trainable tensors (and hooks) for one mod and returns their names;
    `formula` is the paper's closed-form count (Tables 10/11), biases and reparameterisations excluded."""

    name: str
    sites: tuple[str, ...]
    size_key: str | None
    options: tuple[str, ...]
    identity_at_init: bool
    mergeable: bool

    def attach(self, model: nn.Module, anat: Anatomy, mod: Mod, tag: str) -> list[str]: ...

    def formula(self, model: nn.Module, anat: Anatomy, mod: Mod) -> int: ...

    # Optional, looked up with getattr: `check(mod, where)` rejects values the form cannot use;
    # `starts_as_identity(mod)` refines `identity_at_init` per mod (an adapter's init decides it);
    # `why_not_mergeable(mod)` explains a refusal to merge; `default_composition` (else "add") is what a
    # config gets when it names none (prefix: "gated"); `coordinates = False` hides insertion/composition
    # from labels (prompt).


def starts_as_identity(mod: Mod) -> bool:
    """Whether this mod leaves the backbone's function unchanged before training."""
    form = FORMS[mod.form]
    per_mod = getattr(form, "starts_as_identity", None)
    return per_mod(mod) if per_mod is not None else bool(form.identity_at_init)


def why_not_mergeable(mod: Mod) -> str | None:
    """None when the mod can be folded into the frozen weights, else the reason."""
    form = FORMS[mod.form]
    reason = getattr(form, "why_not_mergeable", None)
    if reason is not None:
        return reason(mod)
    return None if form.mergeable else f"form {mod.form!r} adds computation that no weight update expresses"


FORMS: dict[str, Form] = {}


def register_form(form: Form) -> Form:
    """Add a functional form to the space (built-ins and plugins alike)."""
    if form.name in FORMS and FORMS[form.name] is not form:
        raise ConfigError(f"functional form {form.name!r} is registered twice")
    FORMS[form.name] = form
    return form


def get_form(name: str, where: str = "method") -> Form:
    if name not in FORMS:
        raise ConfigError(f"{where}: " + str(unknown("functional form", name, FORMS)))
    return FORMS[name]


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


@dataclass(frozen=True)
class Method:
    """A named composition: mods, whether the whole backbone trains, and the backbone's initialisation."""

    name: str
    mods: tuple[Mod, ...] = ()
    train_all: bool = False
    init: str = "pretrained"
    description: str = ""
    source: str = "petl-bench"

    @property
    def size_keys(self) -> list[str]:
        return sorted({FORMS[m.form].size_key for m in self.mods if FORMS[m.form].size_key})

    def apply(self, model: nn.Module) -> list[str]:
        """Freeze the backbone, add this method's tensors, unfreeze the task head; return trainable names."""
        anat = anatomy(model)
        for p in model.parameters():
            p.requires_grad_(self.train_all)
        for i, mod in enumerate(self.mods):
            FORMS[mod.form].attach(model, anat, mod, tag=str(i))
        for module in head_modules(model):
            module.requires_grad_(True)
        return [n for n, p in model.named_parameters() if p.requires_grad]

    @property
    def identity_at_init(self) -> bool:
        """True when the method starts as the frozen backbone's function (the head aside)."""
        return all(starts_as_identity(m) for m in self.mods)

    def formula(self, model: nn.Module) -> int:
        """The paper's closed-form trainable count (Tables 10/11; the task head excluded). Full fine-tuning
        counts the whole backbone."""
        anat = anatomy(model)
        if not self.train_all:
            return sum(FORMS[m.form].formula(model, anat, m) for m in self.mods)
        backbone = sum(p.numel() for n, p in core_of(model).named_parameters() if ".petl_" not in f".{n}")
        return backbone + sum(FORMS[m.form].formula(model, anat, m) for m in self.mods if m.form != "unfreeze")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "compose": [m.to_dict() for m in self.mods], "train_all": self.train_all,
                "init": self.init, "source": self.source, "description": self.description}


HEAD_ATTRS = ("classifier", "score", "classification_head", "output_layer")


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The task head: new, task-specific layers that every method trains (never the frozen pretrained LM head)."""
    return [getattr(model, a) for a in HEAD_ATTRS if isinstance(getattr(model, a, None), nn.Module)]


def method_from_dict(name: str, raw: dict[str, Any]) -> Method:
    """Build a method from config: `{compose: [...], train_all: bool, init: ...}`."""
    where = f"methods.{name}"
    allowed = {"compose", "train_all", "init", "description"}
    bad = sorted(set(raw) - allowed - {"method"})
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; valid: {', '.join(sorted(allowed | {'method'}))}")
    init = raw.get("init", "pretrained")
    if init not in INITS and not init.startswith(SWAP):
        raise ConfigError(f"{where}.init: {init!r} is not one of {INITS} or '{SWAP}<backbone name>'")
    if init.startswith(SWAP):
        from benchmark.backbones.registry import get_backbone

        try:
            get_backbone(init[len(SWAP):])
        except ConfigError as e:
            raise ConfigError(f"{where}.init: {e}") from None
    mods = tuple(Mod.from_dict(m, f"{where}.compose[{i}]") for i, m in enumerate(raw.get("compose", [])))
    _check_conflicts(mods, where)
    return Method(name, mods, bool(raw.get("train_all", False)), init, raw.get("description", ""), "config")


def _check_conflicts(mods: tuple[Mod, ...], where: str) -> None:
    """Two mods of one form at one site would silently stack: reject, naming both."""
    seen: dict[tuple[str, str, tuple[str, ...]], int] = {}
    for i, m in enumerate(mods):
        key = (m.form, m.site, m.attn_kinds)
        if key in seen:
            raise ConfigError(f"{where}: compose[{seen[key]}] and compose[{i}] both put form {m.form!r} at site "
                              f"{m.site!r}; merge them into one modification")
        seen[key] = i
