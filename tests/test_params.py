"""`petl-bench params`: He et al.'s percentages on BART-large from the meta device, RoBERTa-base budgets, and
clear errors for bad input."""
from __future__ import annotations

import pytest

from benchmark import registry
from benchmark.backbones.fpt import FPTModel
from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.methods.budget import solve
from benchmark.methods.params import param_report
from benchmark.methods.presets import PRESETS
from methods_util import meta, one_thread, tiny  # noqa: F401

BART_LARGE = 406_291_456  # BartModel's true size; the paper divides by 409.6M

# (method, budget, the paper's printed %) — Tables 3, 5, 6 and 12
PAPER_ROWS = [("prefix", "l200", 3.6), ("mam", "l30-r512", 6.7), ("pa-ffn", "r1024", 12.3), ("pa-ffn", "r512", 6.1),
              ("lora-ffn", "r102", 6.1), ("sa-attn", "r200", 3.6), ("sa-ffn", "r200", 2.4),
              ("adapter-pfeiffer", "r600", 7.2), ("pa-attn+pa-ffn", "default", 6.7),
              ("prefix+lora-ffn", "default", 6.7), ("mh-pa", "r200", 3.6), ("prompt", "default", 0.1),
              ("bitfit", "default", 0.1)]


@pytest.mark.parametrize("name,budget,pct", PAPER_ROWS)
def test_bart_large_reproduces_the_papers_percentages(name: str, budget: str, pct: float) -> None:
    report = param_report("bart-large", PRESETS[name], budget)
    assert report.total == BART_LARGE
    den = report.paper_denominator[0]
    assert round(100 * report.formula / den, 1) == pct


def test_paper_count_and_true_count_are_both_reported() -> None:
    report = param_report("bart-large", PRESETS["mam"], "l30-r512").to_dict()
    assert report["trainable_formula"] == 2 * 30 * 1024 * 3 * 12 + 2 * 512 * 1024 * 2 * 12  # paper: MAM formula
    prefix, adapter = report["groups"][0], report["groups"][1]
    assert prefix["extras"] == {"reparameterisation": prefix["true"]}  # the MLP is all that trains
    assert adapter["true"] - adapter["formula"] == adapter["extras"]["biases"] == 24 * (512 + 1024)
    assert report["reparameterisation_counted_by_paper"] is False


@pytest.mark.parametrize("name", ["prefix", "lora", "adapter-pfeiffer", "adapter-houlsby", "mam"])
def test_roberta_base_half_percent_rows_are_reachable(name: str) -> None:
    """Table 2's 0.5% rows: the share is solved to the largest sizes that fit."""
    report = param_report("roberta-base", PRESETS[name], "0.5pct")
    assert 0.45 <= 100 * report.formula / report.total <= 0.5
    if name == "lora":
        assert report.sizes == {"r": 16}  # the paper's LoRA r=16 at 0.5%


def test_cli_prints_groups_and_both_denominators(capsys: pytest.CaptureFixture) -> None:
    assert main(["params", "--backbone", "bart-large", "--method", "pa-ffn", "--budget", "r1024"]) == 0
    out = capsys.readouterr().out
    assert "50,331,648" in out and "12.39%" in out and "12.3%" in out and "409,600,000" in out
    assert "biases" in out


def _solve(name: str, budget: str, backbone: str = "roberta-base"):
    model = meta(backbone)
    total = sum(p.numel() for p in model.parameters())
    return solve(PRESETS[name], budget, lambda m: m.formula(model), total)


@pytest.mark.parametrize("name,budget,message", [
    ("prefix", "0.0001pct", "below the smallest size of method 'prefix'"),
    ("lora", "150pct", "at most 100"),
    ("pa-ffn", "r100000", "more than the whole backbone"),
    ("lora", "r0", "positive"),
    ("bitfit", "0.5pct", "no size knob"),
    ("mam", "k4", "has no size"),
    ("lora", "half", "expected 'default'"),
])
def test_impossible_budgets_fail_before_training(name: str, budget: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _solve(name, budget)


def test_unknown_method_and_backbone(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="unknown method 'lora-fn' \\(did you mean 'lora-ffn'\\?\\)"):
        registry.get_method("lora-fn")
    assert main(["params", "--backbone", "bart-large", "--method", "mamm"]) == 2
    assert "did you mean 'mam'" in capsys.readouterr().err
    assert main(["params", "--backbone", "bart-lrge", "--method", "mam"]) == 2
    assert "did you mean 'bart-large'" in capsys.readouterr().err


def test_prompt_on_the_fpt_wrapper_is_refused() -> None:
    model = FPTModel(tiny("tiny-bert"), d_in=4, out_tokens=1, outputs_per_token=1, classes=2)
    with pytest.raises(ConfigError, match="'prompt' needs the backbone's token embeddings.*FPT wrapper"):
        PRESETS["prompt"].apply(model)
    PRESETS["mam"].apply(FPTModel(tiny("tiny-bert"), d_in=4, out_tokens=1, outputs_per_token=1, classes=2))
