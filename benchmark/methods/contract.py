"""The method contract: what every method — built-in, config-defined or plugin — must do on every backbone it
supports. `petl-bench plugins check` runs it, the run preflight runs its counting rule on the meta device, and
one parametrised test holds every registered method to it on every tiny backbone.

Rules, each violation naming its rule, backbone and the package to blame:
- signature  every form it composes is a registered `Form` subclass that overrides attach and formula, and its
             hooks take the harness's arguments;
- apply      applying raises nothing but a ConfigError (which means "does not fit this backbone" and skips it;
             a form may also declare the `families` it supports);
- names      `attach` returns every tensor it adds, and no backbone tensor trains unless a mod names it (or the
             method trains the whole backbone);
- count      per mod, its tensors hold exactly its formula (unless reparameterised) + its declared extras; each
             extra of a structural kind is measured from the tensors themselves (biases of linear maps, layer
             norm weights, 0-d scales), so a tensor cannot be declared an extra to halve a formula; the method's
             trainable total (tensors counted once) equals `Method.formula` + extras + head; all of it the same
             on the `meta` device, where budgets are solved;
- forward, finite  the forward pass runs; outputs, loss and gradients are finite;
- identity   the output equals the frozen backbone's before training, when the method declares so;
- gradients  every trainable tensor gets a gradient, frozen tensors do not change in an optimiser step, and the
             step changes the output;
- delta      saving the trainable delta and loading it into a fresh model gives identical outputs.

Why tiny random models: the contract is about wiring and accounting, which size does not change, and six
backbones then check in about a second per method each, without weights or network.
"""
from __future__ import annotations

import copy
import inspect
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from benchmark import registry
from benchmark.backbones.anatomy import anatomy
from benchmark.errors import ConfigError
from benchmark.methods.space import EXTRA_KINDS, FORMS, Applied, Method, form_problems

BACKBONES = ("tiny-bert", "tiny-roberta", "tiny-gpt2", "tiny-bart", "tiny-mbart", "tiny-t5")
ATOL = 1e-5
RULES = ("signature", "apply", "names", "count (real and meta)", "forward", "finite", "identity", "gradients",
         "delta")
HOOKS = {"attach": ("model", "anat", "mod", "tag"), "formula": ("model", "anat", "mod"),
         "extras": ("model", "anat", "mod"), "unfreezes": ("model", "anat", "mod")}
MEASURED = ("biases", "layer norms", "learned scales")  # extra kinds the tensors themselves reveal


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
        lines = [f"method {self.method} ({self.source}); forms: {forms}", f"rules: {', '.join(RULES)}"]
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


def blame(method: Method) -> str:
    """The packages responsible for a method: its own, and those of plugin forms it composes."""
    owners = [method.source] + [str(o) for m in method.mods
                                if (o := registry.form_origin(m.form)) and not o.builtin and str(o) != method.source]
    return ", ".join(dict.fromkeys(owners))


def signature_problems(method: Method) -> list[str]:
    """Forms a method composes that are not registered `Form` subclasses overriding attach and formula."""
    problems = []
    for name in dict.fromkeys(m.form for m in method.mods):
        if name not in FORMS:
            problems.append(f"form {name!r} is not registered")
            continue
        problems += [f"form {name!r}: {p}" for p in form_problems(FORMS[name])]
        for hook, params in HOOKS.items():
            fn = getattr(FORMS[name], hook)
            try:
                inspect.signature(fn).bind(*params)
            except TypeError as e:
                problems.append(f"form {name!r}: {hook}{inspect.signature(fn)} cannot be called as "
                                f"{hook}({', '.join(params)}): {e}")
    return problems


def supported(method: Method, family: str) -> str | None:
    """None when every form supports the backbone family, else why not (from the forms' `families`)."""
    for m in method.mods:
        families = FORMS[m.form].families
        if families is not None and family not in families:
            return f"form {m.form!r} supports only {', '.join(families)}"
    return None


# --- counting -------------------------------------------------------------------------------------------------

def measured_extras(model: nn.Module, tensors: dict[str, int]) -> dict[str, int]:
    """The structural extras among a mod's tensors: a linear map's bias (a `bias` beside a ≥2-d `weight`), a
    layer norm's tensors, 0-d scales."""
    out: dict[str, int] = {}
    for name, n in tensors.items():
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        param = model.get_parameter(name)
        weight = owner._parameters.get("weight")
        if isinstance(owner, nn.LayerNorm) or type(owner).__name__.endswith("LayerNorm"):
            kind = "layer norms"
        elif leaf == "bias" and weight is not None and weight.dim() >= 2:
            kind = "biases"
        elif param.dim() == 0:
            kind = "learned scales"
        else:
            continue
        out[kind] = out.get(kind, 0) + n
    return out


@dataclass
class Count:
    """A method's count on one model: what trains, what is declared, and every disagreement."""

    trainable: int
    declared: int
    explanation: str
    problems: list[tuple[str, str]]  # (rule, message)
    applied: Applied


def count(model: nn.Module, method: Method) -> Count:
    """Apply `method` (a ConfigError propagates: it does not fit) and compare its tensors with its declarations."""
    anat = anatomy(model)
    before = {n for n, _ in model.named_parameters()}
    total_formula = method.formula(model)
    declared = []
    for m in method.mods:
        form = FORMS[m.form]
        declared.append((form.formula(model, anat, m), form.extras(model, anat, m), form.formula_trains(m)))
    applied = method.apply(model)
    problems: list[tuple[str, str]] = []
    in_mods = {n for tensors in applied.mods for n in tensors}
    hidden = sorted(n for n, _ in model.named_parameters() if n not in before and n not in in_mods)
    if hidden:
        problems.append(("names", f"attach added {len(hidden)} tensor(s) it did not return, e.g. {hidden[:3]}"))
    unclaimed = sorted(set(applied.trainable) - applied.claimed)
    if unclaimed:
        problems.append(("names", f"backbone tensors train without a declaration: {unclaimed[:5]}"))
    parts, adjust = [], 0
    for i, (m, (formula, extras, trains), tensors) in enumerate(zip(method.mods, declared, applied.mods)):
        where = f"compose[{i}] {m.form}@{m.site}"
        unknown_kinds = sorted(set(extras) - set(EXTRA_KINDS))
        if unknown_kinds:
            problems.append(("count", f"{where} declares extras {unknown_kinds}; the kinds outside the paper's "
                                      f"formula are {', '.join(EXTRA_KINDS)}"))
        own = (formula if trains else 0) + sum(extras.values())
        adjust += own - formula
        real = sum(tensors.values())
        text = (f"formula {formula:,}" if trains else f"formula {formula:,} generated by") + "".join(
            f" + {n:,} {k}" for k, n in extras.items())
        parts.append(f"{where}: {text}")
        if real != own:
            problems.append(("count", f"{where}: its tensors hold {real:,} elements, but it declares {own:,} "
                                      f"({text})"))
        if trains:  # the structure of what attach added (unfrozen backbone tensors are the formula itself)
            found = measured_extras(model, {n: k for n, k in tensors.items() if n not in before})
            for kind in MEASURED:
                if found.get(kind, 0) != extras.get(kind, 0):
                    problems.append(("count", f"{where} declares {extras.get(kind, 0):,} {kind} outside its "
                                              f"formula, but its tensors hold {found.get(kind, 0):,}"))
    head = sum(applied.head.values())
    trainable = sum(applied.trainable.values())
    total = total_formula + adjust + head
    explanation = (f"Method.formula {total_formula:,} (tensors counted once)" + "".join(f"; {p}" for p in parts)
                   + f"; head {head:,}")
    if trainable != total:
        problems.append(("count", f"{trainable:,} trainable elements, but the declarations give {total:,} = "
                                  f"{explanation}"))
    return Count(trainable, total, explanation, problems, applied)


# --- one backbone ---------------------------------------------------------------------------------------------

def inputs(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """A deterministic batch of two sequences; encoder-decoder heads read the final <eos>."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (2, 8), generator=g)
    if model.config.is_encoder_decoder:
        ids[:, -1] = model.config.eos_token_id
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1])}


@lru_cache(maxsize=None)
def _pristine(backbone: str, meta: bool) -> nn.Module:
    from benchmark.backbones.registry import build_model

    return build_model(backbone, "seq-cls", init="random", seed=0, num_labels=2, meta=meta).eval()


def build(backbone: str, meta: bool = False) -> nn.Module:
    """A fresh copy of a tiny random seq-cls model (built once per process: the same weights every call)."""
    return copy.deepcopy(_pristine(backbone, meta))


def _forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        out = model(**batch)
    except Exception as e:
        raise Broken("forward", f"the forward pass raised {type(e).__name__}: {e}") from e
    return out.logits, out.loss


def _finite(what: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():
        raise Broken("finite", f"{what} holds NaN or inf")


def _apply(model: nn.Module, method: Method) -> Count:
    try:
        result = count(model, method)
    except ConfigError:
        raise
    except Exception as e:
        raise Broken("apply", f"applying the method raised {type(e).__name__}: {e}") from e
    if result.problems:
        raise Broken(*result.problems[0])
    return result


def _check_meta(backbone: str, method: Method, real: Count) -> None:
    try:
        meta = count(build(backbone, meta=True), method)
    except Exception as e:
        raise Broken("count", f"applying on the meta device (how budgets are solved) raised "
                              f"{type(e).__name__}: {e}") from e
    if meta.problems:
        raise Broken(meta.problems[0][0], f"on the meta device: {meta.problems[0][1]}")
    if (meta.trainable, meta.declared) != (real.trainable, real.declared):
        raise Broken("count", f"on the meta device {meta.trainable:,} trainable / {meta.declared:,} declared, but "
                              f"{real.trainable:,} / {real.declared:,} on a real model")


def _check_gradients(model: nn.Module, batch: dict[str, torch.Tensor], before: torch.Tensor) -> torch.Tensor:
    """One backward pass and one optimiser step; returns the output after the step."""
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
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
            fresh = build(backbone)
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
    model = build(backbone)
    why_not = supported(method, model.config.model_type)
    if why_not:
        return BackboneResult(backbone, "skipped", why_not)
    batch = inputs(model)
    frozen = copy.deepcopy(model)
    try:
        real = _apply(model, method)
    except ConfigError as e:
        return BackboneResult(backbone, "skipped", f"does not fit: {e}")
    model.eval()  # the method's new modules (dropout) start in training mode
    _check_meta(backbone, method, real)
    with torch.no_grad():
        before, loss = _forward(model, batch)
        reference, _ = _forward(frozen, batch)
    _finite("the output at init", before)
    _finite("the loss at init", loss)
    if method.identity_at_init and not torch.allclose(before, reference, atol=ATOL, rtol=1e-4):
        raise Broken("identity", f"declares identity at init, but the output differs from the frozen backbone's "
                                 f"by max |Δ| = {(before - reference).abs().max().item():.3g}")
    after = _check_gradients(model, batch, before)
    _check_delta(backbone, model, method, batch, after)
    return BackboneResult(backbone, "ok", f"trainable {real.trainable:,} = {real.explanation}")


def check(method: Method, backbones: tuple[str, ...] = BACKBONES) -> ContractReport:
    """Run the contract for `method` on each backbone."""
    forms = {m.form: str(registry.form_origin(m.form) or "unregistered") for m in method.mods}
    report = ContractReport(method.name, method.source, forms)
    package = blame(method)
    if isinstance(method, registry.BrokenMethod):
        report.violations.append(Violation("signature", package, method.problem))
        return report
    report.violations += [Violation("signature", package, p) for p in signature_problems(method)]
    if report.violations:
        return report
    torch.manual_seed(0)
    for backbone in backbones:
        try:
            report.results.append(check_backbone(method, backbone))
        except Broken as e:
            report.results.append(BackboneResult(backbone, "failed", e.rule))
            report.violations.append(Violation(e.rule, package, str(e), backbone))
        except Exception as e:  # anything else a method raises is still its violation, not a crash of the check
            report.results.append(BackboneResult(backbone, "failed", "error"))
            report.violations.append(Violation("error", package, f"{type(e).__name__}: {e}", backbone))
    return report


def check_method(name: str, backbones: tuple[str, ...] = BACKBONES,
                 extra: dict[str, Method] | None = None) -> ContractReport:
    """The contract for method `name` (installed, or defined in `extra`)."""
    return check(registry.get_method(name, extra), backbones)


def preflight_count(method: Method, model: nn.Module) -> None:
    """The names and count rules on one (meta) model; raises Broken naming the first problem."""
    _apply(model, method)
