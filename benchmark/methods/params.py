"""Exact trainable-parameter counts of a method on a backbone, built on the `meta` device.

Two counts per modification: the paper's closed form (He et al. Tables 10/11: biases, layer norms,
learned scalars and the prefix MLP excluded) and the true count of the tensors that train. Two
denominators: the backbone's own parameter count (the harness's default, exact for every backbone)
and, where a paper quotes percentages against another number, that number. He et al. divide by
409.6M for BART-large (their plotting code: 14,745,600 trainable = 3.6%), while BartModel really
holds 406,291,456 parameters; their PA-ffn r=1024 row reads 12.3% only against 409.6M (12.39% of
the true count), so both are printed. Their mBART rows quote the same percentages as BART's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from benchmark.backbones.anatomy import anatomy, core_of
from benchmark.backbones.registry import build_model
from benchmark.methods.budget import solve
from benchmark.methods.space import FORMS, Method

PAPER_DENOMINATORS: dict[str, tuple[int, str]] = {
    "bart-large": (409_600_000, "He et al. 2022 (plotting code)"),
    "mbart-large-cc25": (409_600_000, "He et al. 2022 quote BART-large's percentages for mBART"),
}


@dataclass
class Row:
    label: str
    formula: int
    true: int
    extras: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    backbone: str
    family: str
    shape: str
    total: int
    method: Method
    budget: str
    sizes: dict[str, Any]
    rows: list[Row]
    paper_denominator: tuple[int, str] | None

    @property
    def formula(self) -> int:
        return sum(r.formula for r in self.rows)

    @property
    def true(self) -> int:
        return sum(r.true for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        paper = self.paper_denominator
        return {"backbone": self.backbone, "family": self.family, "backbone_params": self.total,
                "method": self.method.to_dict(), "budget": self.budget, "sizes": self.sizes,
                "groups": [r.__dict__ for r in self.rows], "trainable_formula": self.formula,
                "trainable_true": self.true, "pct_formula": 100 * self.formula / self.total,
                "pct_true": 100 * self.true / self.total,
                "paper_denominator": paper[0] if paper else None,
                "pct_formula_paper": 100 * self.formula / paper[0] if paper else None,
                "reparameterisation_counted_by_paper": False}


def count(model: nn.Module, method: Method) -> list[Row]:
    """Apply `method` to `model` and break its trainable tensors down by the names each form's `attach` returned:
    one row per modification (its formula, its tensors, its declared extras), a negative row for backbone tensors
    that several modifications unfreeze (counted once), the backbone tensors that full fine-tuning trains, then
    the task head. The rows sum to `Method.formula` and to the trainable count."""
    anat = anatomy(model)
    formulas = [FORMS[m.form].formula(model, anat, m) for m in method.mods]
    total_formula = method.formula(model)
    extras = [FORMS[m.form].extras(model, anat, m) for m in method.mods]
    applied = method.apply(model)
    rows = [Row(f"compose[{i}] {m.label()}", formulas[i], sum(applied.mods[i].values()), extras[i])
            for i, m in enumerate(method.mods)]
    in_mods = {n: k for m in applied.mods for n, k in m.items()}
    overlap_true = sum(rows[i].true for i in range(len(rows))) - sum(in_mods.values())
    if method.train_all:  # the rest of the backbone; its formula row absorbs the tensors counted twice above
        rows.append(Row("backbone (all tensors)", total_formula - sum(formulas),
                        sum(applied.backbone.values()) - overlap_true))
    elif overlap_true:
        rows.append(Row("tensors unfrozen by several modifications (counted once)", -overlap_true, -overlap_true))
    rows.append(Row("task head", 0, sum(applied.head.values())))
    return rows


def param_report(backbone: str, method: Method, budget: str = "default", head: str = "base") -> Report:
    """Solve the budget with the paper formula against the true backbone size, then count on the meta device."""
    model = build_model(backbone, head, meta=True)
    total = sum(p.numel() for p in core_of(model).parameters())
    solved, sizes = solve(method, budget, lambda m: m.formula(model), total)
    anat = anatomy(model)
    shape = (f"d={anat.d_model}, {anat.n_layers} layers per stack; {len(anat.attn)} attention and "
             f"{len(anat.ffn)} FFN sub-layers")
    rows = count(model, solved)
    return Report(backbone, anat.family, shape, total, solved, budget, sizes, rows, PAPER_DENOMINATORS.get(backbone))


def format_report(rep: Report) -> str:
    """The table `petl-bench params` prints."""
    w = max(len(r.label) for r in rep.rows) + 2
    sizes = ", ".join(f"{k}={v}" for k, v in rep.sizes.items()) or "no size knob"
    lines = [f"backbone  {rep.backbone} ({rep.family}; {rep.shape}): {rep.total:,} parameters",
             f"method    {rep.method.name}" + (f" — {rep.method.description}" if rep.method.description else ""),
             f"budget    {rep.budget} → {sizes}", "",
             f"{'group':<{w}}{'paper formula':>16}{'true count':>16}"]
    for r in rep.rows:
        note = "; ".join(f"incl. {n:,} {k}" for k, n in r.extras.items())
        lines.append(f"{r.label:<{w}}{r.formula:>16,}{r.true:>16,}" + (f"   ({note})" if note else ""))
    lines.append(f"{'total trainable':<{w}}{rep.formula:>16,}{rep.true:>16,}")
    lines.append(f"{f'% of backbone ({rep.total:,})':<{w}}{100 * rep.formula / rep.total:>15.2f}%"
                 f"{100 * rep.true / rep.total:>15.2f}%")
    if rep.paper_denominator:
        den, source = rep.paper_denominator
        lines.append(f"{f'% of paper denominator ({den:,})':<{w}}{100 * rep.formula / den:>15.1f}%"
                     f"{100 * rep.true / den:>15.1f}%   [{source}]")
    if rep.formula != rep.true:
        lines.append("paper formula: He et al. Tables 10/11 (biases, layer norms, learned scales, the prefix MLP "
                     "and the task head not counted); true count: every tensor that trains")
    return "\n".join(lines)
