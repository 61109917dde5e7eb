"""The method contract: what every method, built-in or plugin, must do on every backbone it supports.

`check_method(name)` runs each rule on a tiny random model of each supported backbone and returns the
violations, each naming its rule, backbone and the package to blame:

- signature  the plugin imports; its entry point gives a `Method`; every form it composes has the `Form`
             attributes, `attach(model, anat, mod, tag)` and `formula(model, anat, mod)`;
- apply      applying the method raises nothing but a ConfigError (which means "does not fit this backbone"
             and skips it; a form may also declare the families it supports in `families`);
- count      trainable elements = per modification its formula (+ the extras the harness documents as outside
             the paper's formula: biases, layer norms, learned scales; a reparameterised form counts its
             generator) + the task head, exactly; and the same on the `meta` device, where budgets are solved;
- forward    the forward pass runs;
- finite     outputs, loss and gradients are finite;
- identity   the output equals the frozen backbone's before training, when the method declares so;
- gradients  every trainable tensor receives a gradient after one backward pass, no backbone tensor outside the
             declaration trains, frozen tensors do not change after an optimiser step, and the step changes the
             output;
- delta      saving the trainable delta and loading it into a fresh model gives identical outputs.

Why tiny random models: the contract is about wiring and accounting, which size does not change, and six
backbones then check in seconds without weights or network.
"""
from __future__ import annotations

import copy
import inspect
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from benchmark import registry
from benchmark.errors import ConfigError
from benchmark.methods.space import FORMS, Method

log = logging.getLogger("petl_bench.plugins")
BACKBONES = ("tiny-bert", "tiny-roberta", "tiny-gpt2", "tiny-bart", "tiny-mbart", "tiny-t5")
FORM_ATTRS = ("name", "sites", "size_key", "options", "identity_at_init", "mergeable")
FORM_METHODS = {"attach": ("model", "anat", "mod", "tag"), "formula": ("model", "anat", "mod")}
ATOL = 1e-5
RULES = ("signature", "apply", "count (real and meta)", "forward", "finite", "identity", "gradients", "delta")


@dataclass(frozen=True)
class Violation:
    rule: str
    package: str
    message: str
    backbone: str | None = None

    def __str__(self) -> str:
        where = f" on {self.backbone}" if self.backbone else ""
        return f"VIOLATION {self.rule}{where} [{self.package}]: {self.message}"


@dataclass
class BackboneResult:
    backbone: str
    status: str  # ok, skipped, failed
    detail: str = ""


@dataclass
class ContractReport:
    method: str
    source: str
    forms: dict[str, str]
    results: list[BackboneResult] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def format(self) -> str:
        forms = ", ".join(f"{n} ({o})" for n, o in self.forms.items()) or "none"
        lines = [f"method {self.method} ({self.source}); forms: {forms}",
                 f"rules: {', '.join(RULES)}"]
        lines += [f"  {r.backbone:<14}{r.status:<9}{r.detail}" for r in self.results]
        lines += [f"  {v}" for v in self.violations]
        verdict = "contract holds" if self.ok else f"{len(self.violations)} violation(s)"
        lines.append(f"{self.method}: {verdict} on {sum(r.status == 'ok' for r in self.results)} backbone(s)")
        return "\n".join(lines)


class Broken(Exception):
    """One rule failed on one backbone: stop checking that backbone."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def _blame(method: Method) -> str:
    """The packages responsible for a method: its own, and those of plugin forms it composes."""
    owners = [method.source] + [str(o) for m in method.mods
                                if (o := registry.form_origin(m.form)) and not o.builtin and str(o) != method.source]
    return ", ".join(dict.fromkeys(owners))


def signature_problems(method: Method) -> list[str]:
    """Missing Form attributes or wrong attach/formula signatures of the forms a method composes."""
    problems = []
    for form_name in dict.fromkeys(m.form for m in method.mods):
        form = FORMS.get(form_name)
        if form is None:
            problems.append(f"form {form_name!r} is not registered")
            continue
        missing = [a for a in FORM_ATTRS if not hasattr(form, a)]
        if missing:
            problems.append(f"form {form_name!r} lacks attribute(s) {missing}")
        for fn_name, params in FORM_METHODS.items():
            fn = getattr(form, fn_name, None)
            if not callable(fn):
                problems.append(f"form {form_name!r} has no method {fn_name}{params}")
                continue
            try:
                inspect.signature(fn).bind(*params)
            except TypeError as e:
                problems.append(f"form {form_name!r}: {fn_name}{inspect.signature(fn)} cannot be called as "
                                f"{fn_name}({', '.join(params)}): {e}")
    return problems


def supported(method: Method, family: str) -> str | None:
    """None when every form supports the backbone family, else why not (a form may declare `families`)."""
    for m in method.mods:
        families = getattr(FORMS.get(m.form), "families", None)
        if families is not None and family not in families:
            return f"form {m.form!r} supports only {', '.join(families)}"
    return None


def inputs(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """A deterministic batch of two sequences; encoder-decoder heads read the final <eos>."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (2, 8), generator=g)
    if model.config.is_encoder_decoder:
        ids[:, -1] = model.config.eos_token_id
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1])}


def _build(backbone: str, meta: bool = False) -> nn.Module:
    from benchmark.backbones.registry import build_model

    model = build_model(backbone, "seq-cls", init="random", seed=0, num_labels=2, meta=meta)
    return model.eval()


def _forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        out = model(**batch)
    except Exception as e:
        raise Broken("forward", f"the forward pass raised {type(e).__name__}: {e}") from e
    return out.logits, out.loss


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _expected(model: nn.Module, method: Method, i: int, extras: dict[str, int]) -> tuple[int, str]:
    """What modification i declares it trains, and how that reads. A form may define `trained_count(model, anat,
    mod)`; otherwise its formula plus the documented extras, except that a reparameterised form (`reparam_count`,
    the prefix MLP) trains the generator, not the tensors its formula counts."""
    from benchmark.backbones.anatomy import anatomy

    mod = method.mods[i]
    form, anat = FORMS[mod.form], anatomy(model)
    own = getattr(form, "trained_count", None)
    if own is not None:
        n = own(model, anat, mod)
        return n, f"{mod.form}@{mod.site} declares {n:,}"
    formula = form.formula(model, anat, mod)
    reparam = getattr(form, "reparam_count", None)
    generator = reparam(anat, mod) if reparam is not None else 0
    if generator:
        return generator, f"{mod.form}@{mod.site} generator {generator:,} (its formula counts {formula:,})"
    extra = sum(extras.values())
    text = f"{mod.form}@{mod.site} formula {formula:,}" + (f" + {extra:,} {', '.join(extras)}" if extra else "")
    return formula + extra, text


def declared_count(model: nn.Module, method: Method) -> tuple[int, int, str]:
    """Apply `method` and return (trainable elements, declared elements, explanation): per modification its
    formula (+ the extras the harness documents as outside the paper's formula), the backbone when the method
    trains it all, and the task head."""
    from benchmark.methods.params import count

    rows = count(model, method)
    parts = [_expected(model, method, i, rows[i].extras) for i, m in enumerate(method.mods)
             if not (method.train_all and m.form == "unfreeze")]
    if method.train_all:
        parts.append((rows[-2].formula, f"backbone {rows[-2].formula:,}"))
    parts.append((rows[-1].true, f"head {rows[-1].true:,}"))
    trainable = sum(p.numel() for p in _trainable(model).values())
    declared = sum(n for n, _ in parts)
    why = " + ".join(text for _, text in parts)
    if trainable != declared:  # say which modification holds what
        why += " (" + "; ".join(f"{r.label}: {r.true:,} in its tensors" for r in rows[:len(method.mods)]) + ")"
    return trainable, declared, why


def _apply(model: nn.Module, method: Method) -> tuple[int, int, str]:
    """Apply and count; a ConfigError means the method does not fit this backbone."""
    try:
        return declared_count(model, method)
    except ConfigError:
        raise
    except Exception as e:
        raise Broken("apply", f"applying the method raised {type(e).__name__}: {e}") from e


def _check_count(backbone: str, method: Method, trainable: int, declared: int, why: str) -> str:
    if trainable != declared:
        raise Broken("count", f"{trainable:,} trainable elements, but the declaration gives {declared:,} = {why}")
    meta = _build(backbone, meta=True)
    try:
        meta_trainable, meta_declared, _ = declared_count(meta, method)
    except Exception as e:
        raise Broken("count", f"applying on the meta device (how budgets are solved) raised "
                              f"{type(e).__name__}: {e}") from e
    if (meta_trainable, meta_declared) != (trainable, declared):
        raise Broken("count", f"on the meta device {meta_trainable:,} trainable / {meta_declared:,} declared, "
                              f"but {trainable:,} / {declared:,} on a real model")
    return f"trainable {trainable:,} = {why}"


def _finite(what: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():
        raise Broken("finite", f"{what} holds NaN or inf")


def _undeclared(model: nn.Module, method: Method) -> list[str]:
    """Backbone tensors that train although no modification declares them (head and `petl_*` tensors aside)."""
    from benchmark.methods.space import head_modules

    if method.train_all or any(m.form == "unfreeze" for m in method.mods):
        return []
    head = {id(p) for m in head_modules(model) for p in m.parameters()}
    return [n for n, p in _trainable(model).items() if id(p) not in head and ".petl_" not in f".{n}"]


def _check_gradients(model: nn.Module, method: Method, batch: dict[str, torch.Tensor],
                     before: torch.Tensor) -> torch.Tensor:
    """One backward pass and one optimiser step; returns the output after the step."""
    undeclared = _undeclared(model, method)
    if undeclared:
        raise Broken("gradients", f"backbone tensors train without a declaration: {undeclared[:5]}")
    trainable = _trainable(model)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    _, loss = _forward(model, batch)
    _finite("the loss", loss)
    loss.backward()
    dead = [n for n, p in trainable.items() if p.grad is None]
    if dead:
        raise Broken("gradients", f"no gradient reaches {len(dead)} trainable tensor(s), e.g. {dead[:3]} "
                                  f"(is the module wired into the forward pass?)")
    for n, p in trainable.items():
        _finite(f"the gradient of {n}", p.grad)
    torch.optim.AdamW(trainable.values(), lr=1e-2).step()
    changed = [n for n, p in model.named_parameters() if n in frozen and not torch.equal(p, frozen[n])]
    if changed:
        raise Broken("gradients", f"frozen tensors changed during a step: {changed[:3]}")
    with torch.no_grad():
        after, _ = _forward(model, batch)
    _finite("the output after one step", after)
    if torch.equal(after, before):
        raise Broken("gradients", "one optimiser step leaves the output unchanged")
    return after


def _check_delta(backbone: str, model: nn.Module, method: Method, batch: dict[str, torch.Tensor],
                 expected: torch.Tensor) -> None:
    from benchmark.methods.delta import load_delta, save_delta

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "delta.safetensors"
        try:
            save_delta(model, path, method)
            fresh = _build(backbone)
            method.apply(fresh)
            load_delta(fresh, path)
            fresh.eval()
        except Exception as e:
            raise Broken("delta", f"save/load raised {type(e).__name__}: {e}") from e
    with torch.no_grad():
        got, _ = _forward(fresh, batch)
    if not torch.allclose(got, expected, atol=ATOL, rtol=0):
        raise Broken("delta", f"a fresh model with the loaded delta differs by max |Δ| = "
                              f"{(got - expected).abs().max().item():.3g}")


def check_backbone(method: Method, backbone: str) -> BackboneResult:
    """Every rule on one backbone; raises Broken at the first failure."""
    model = _build(backbone)
    why_not = supported(method, model.config.model_type)
    if why_not:
        return BackboneResult(backbone, "skipped", why_not)
    batch = inputs(model)
    frozen = copy.deepcopy(model)
    try:
        trainable, declared, why = _apply(model, method)
    except ConfigError as e:
        return BackboneResult(backbone, "skipped", f"does not fit: {e}")
    model.eval()  # the method's new modules (dropout) start in training mode
    detail = _check_count(backbone, method, trainable, declared, why)
    with torch.no_grad():
        before, loss = _forward(model, batch)
        reference, _ = _forward(frozen, batch)
    _finite("the output at init", before)
    _finite("the loss at init", loss)
    if method.identity_at_init and not torch.allclose(before, reference, atol=ATOL, rtol=1e-4):
        raise Broken("identity", f"declares identity at init, but the output differs from the frozen backbone's "
                                 f"by max |Δ| = {(before - reference).abs().max().item():.3g}")
    after = _check_gradients(model, method, batch, before)
    _check_delta(backbone, model, method, batch, after)
    return BackboneResult(backbone, "ok", detail)


def check_method(name: str, backbones: tuple[str, ...] = BACKBONES,
                 extra: dict[str, Method] | None = None) -> ContractReport:
    """Run the method contract for method `name` on each backbone."""
    method = registry.get_method(name, extra)
    forms = {m.form: str(registry.form_origin(m.form) or "unregistered") for m in method.mods}
    report = ContractReport(name, method.source, forms)
    package = _blame(method)
    if isinstance(method, registry.BrokenMethod):
        report.violations.append(Violation("signature", package, method.problem))
        return report
    for problem in signature_problems(method):
        report.violations.append(Violation("signature", package, problem))
    if report.violations:
        return report
    torch.manual_seed(0)
    for backbone in backbones:
        try:
            report.results.append(check_backbone(method, backbone))
        except Broken as e:
            report.results.append(BackboneResult(backbone, "failed", e.rule))
            report.violations.append(Violation(e.rule, package, str(e), backbone))
        except Exception as e:  # anything else a plugin raises is still its violation, not a crash of the check
            report.results.append(BackboneResult(backbone, "failed", "error"))
            report.violations.append(Violation("error", package, f"{type(e).__name__}: {e}", backbone))
    return report


def preflight(method: Method, backbone: str) -> None:
    """Before a plugin's run trains: it must load, apply and count as it declares (on the meta device, so any
    backbone checks in a second). Built-in methods are held to this by the test-suite instead."""
    if isinstance(method, registry.BrokenMethod):
        raise registry.PluginError(method.problem)
    if not uses_plugin(method):
        return
    package = _blame(method)
    problems = signature_problems(method)
    if problems:
        raise registry.PluginError(f"method {method.name!r} [{package}]: {'; '.join(problems)}")
    try:
        model = _meta(backbone)
    except Exception as e:  # not the plugin's fault (a backbone without a shipped config, offline): train on
        log.warning("cannot build %s on the meta device to preflight %s: %s", backbone, method.name, e)
        return
    try:
        trainable, declared, why = _apply(model, method)
    except ConfigError:
        raise
    except Broken as e:
        raise registry.PluginError(f"method {method.name!r} [{package}]: {e}") from e
    if trainable != declared:
        raise registry.PluginError(f"method {method.name!r} [{package}]: count differs from its declaration on "
                                   f"{backbone}: {trainable:,} trainable elements, declared {declared:,} = {why}")


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
        raise registry.PluginError(f"method {method.name!r} [{_blame(method)}] failed in {stage}: "
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
