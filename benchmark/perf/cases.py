"""What a perf run measures: one `Case` per (backbone, method, budget, implementation), planned up front.

A case is plain data (it crosses a process boundary as JSON), so the parent can plan the
whole run, hand each case to a fresh worker, and pair the results afterwards: every
method with full fine-tuning on the same backbone and batch, and each of our methods
that peft also implements with peft's, at the same size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark.backbones.registry import get_backbone
from benchmark.errors import ConfigError

IMPLS = ("petl-bench", "peft")
DEFAULT_BACKBONES = ("roberta-base", "bart-large", "mbart-large-cc25", "gpt2")
# He et al.'s presets (Tables 2-6); full fine-tuning is always added as the reference.
DEFAULT_METHODS = ("full", "bitfit", "prompt", "prefix", "adapter-houlsby", "adapter-pfeiffer", "lora", "lora-ffn",
                   "pa-attn", "pa-ffn", "mh-pa", "scaled-pa", "mam")
SEQ2SEQ_FAMILIES = ("bart", "mbart", "t5")
ENCODER_ONLY_FAMILIES = ("roberta", "bert")
# He et al. Table 2 (RoBERTa-base on GLUE) runs these at 0.5% of the backbone; MAM there is l=16 + r=16.
# Everywhere else a method runs at its preset's paper size (Table 6 on BART-large / mBART).
GLUE_BUDGETS = {"prefix": "0.5pct", "lora": "0.5pct", "adapter-houlsby": "0.5pct", "mam": "l16-r16"}


@dataclass(frozen=True)
class PeftPair:
    """One method that peft also has, at the size peft's reference numbers were taken: our method and budget,
    the options that make ours the same computation, and peft's config class and keywords."""

    compare: str
    method: str
    budget: str
    options: dict[str, Any]
    peft_config: str
    peft_kwargs: dict[str, Any]


# LoRA r=8 on q and v (alpha 16, dropout 0.1); prefix tuning with 16 tokens and no reparameterisation MLP (peft's
# default `prefix_projection=False`); prompt tuning with 16 tokens.
PEFT_PAIRS = (
    PeftPair("lora-r8", "lora", "r8", {}, "LoraConfig", {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1}),
    PeftPair("prefix-l16", "prefix", "l16", {"reparam": False}, "PrefixTuningConfig", {"num_virtual_tokens": 16}),
    PeftPair("prompt-l16", "prompt", "l16", {}, "PromptTuningConfig", {"num_virtual_tokens": 16}),
)
# Pairs that would not be the same computation at the same size, and why (checked on peft 0.21).
_ENC_DEC_PREFIX = "peft's prefix on an encoder-decoder reaches the decoder only; ours every attention sub-layer"
_ENC_DEC_PROMPT = "peft prompts both the encoder and the decoder input (2 × l vectors); ours the encoder input"
PEFT_SKIP = {("gpt2", "lora-r8"): "peft's LoRA on GPT-2 targets the fused c_attn (q, k and v); ours adapts q and v",
             **{(f, "prefix-l16"): _ENC_DEC_PREFIX for f in SEQ2SEQ_FAMILIES},
             **{(f, "prompt-l16"): _ENC_DEC_PROMPT for f in SEQ2SEQ_FAMILIES}}


@dataclass(frozen=True)
class Case:
    """One configuration to measure in its own process."""

    backbone: str
    method: str
    budget: str = "default"
    impl: str = "petl-bench"
    compare: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    batch: int = 8
    seq: int = 128
    steps: int = 5
    warmup: int = 2
    threads: int = 0
    device: str = "auto"
    flops: bool = True
    phase: str = "time"  # "memory": the CPU worker that measures live peak memory (see benchmark.perf.measure)

    @property
    def label(self) -> str:
        """A file-name-safe name for the case, unique within a backbone: 'lora', 'lora@r8', 'peft-lora@r8'."""
        base = self.method if self.budget == "default" else f"{self.method}@{self.budget}"
        if self.options:
            base += "+" + "+".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return base if self.impl == "petl-bench" else f"{self.impl}-{base}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Case":
        return cls(**raw)


def family_of(backbone: str) -> str:
    return get_backbone(backbone).family


def head_for(backbone: str) -> str:
    """The task head each family is benchmarked with in the papers: seq2seq LM for BART/mBART/T5 (XSum, en-ro),
    sequence classification otherwise (GLUE for RoBERTa; GPT-2 classifies too, as in Lu et al.)."""
    return "seq2seq" if family_of(backbone) in SEQ2SEQ_FAMILIES else "seq-cls"


def paper_budget(backbone: str, method: str) -> str:
    """The budget He et al. ran `method` at on this backbone's family (Table 2 on encoders, else preset sizes)."""
    if family_of(backbone) in ENCODER_ONLY_FAMILIES:
        return GLUE_BUDGETS.get(method, "default")
    return "default"


def parse_list(text: str | None, default: tuple[str, ...]) -> list[str]:
    """A comma-separated command-line list, or the default when not given."""
    if text is None:
        return list(default)
    return [t.strip() for t in text.split(",") if t.strip()]


def peft_backbones(text: str | None, backbones: list[str]) -> list[str]:
    """Where peft's rows run: as given ('none' for nowhere), else roberta-base when it is measured (the issue's
    reference numbers are on roberta-base)."""
    if text is None:
        return [b for b in ("roberta-base",) if b in backbones]
    return [] if text.strip() == "none" else parse_list(text, ())


def plan(backbones: list[str], methods: list[str], peft_on: list[str], bracket: bool = True,
         **shape: Any) -> list[Case]:
    """Every case of a run, grouped by backbone: full fine-tuning first (the reference), then each method at its
    paper budget, then each peft pair (ours beside peft's). With `bracket`, full fine-tuning runs again after
    the backbone's other cases and both runs' steps are pooled, so a drift in machine load during the backbone's
    cases moves the reference too. `shape` holds Case's measurement fields."""
    for b in backbones + peft_on:
        get_backbone(b)  # unknown names fail before any measurement
    cases: list[Case] = []
    for b in backbones:
        names = ["full"] + [m for m in methods if m != "full"]
        group = [Case(b, m, paper_budget(b, m), **shape) for m in names]
        if b in peft_on:
            group += peft_cases(b, shape)
        cases += group + (group[:1] if bracket and len(group) > 1 else [])
    missing = sorted(set(peft_on) - set(backbones))
    if missing:
        raise ConfigError(f"--peft-on {','.join(missing)}: not among --backbones ({','.join(backbones)})")
    return cases


def peft_cases(backbone: str, shape: dict[str, Any]) -> list[Case]:
    """Ours and peft's case for each pair peft can run on this backbone at the same size."""
    out = []
    for p in PEFT_PAIRS:
        if (family_of(backbone), p.compare) in PEFT_SKIP:
            continue
        for impl in IMPLS:
            out.append(Case(backbone, p.method, p.budget, impl, p.compare,
                            dict(p.options) if impl == "petl-bench" else {}, **shape))
    return out


def pair(compare: str) -> PeftPair:
    return next(p for p in PEFT_PAIRS if p.compare == compare)
