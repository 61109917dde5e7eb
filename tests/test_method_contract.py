"""One contract for every method: each registered method (the built-in presets, the FPT ablations and the
example plugin petl-ia3) on each tiny backbone, held to every rule of `benchmark.methods.contract`, plus what
the contract must catch."""
from __future__ import annotations

import pytest

from conftest import install_example_plugin
from methods_util import one_thread  # noqa: F401
from benchmark import registry
from benchmark.backbones.anatomy import anatomy
from benchmark.methods import contract
from benchmark.methods.params import count
from benchmark.methods.space import FORMS

install_example_plugin()  # collection needs the example plugin registered, so that it gets its parameters
METHODS = sorted(registry.methods())
# A method that does not fit a backbone is skipped only where listed, with the reason it must give.
SKIPS = {("bitfit", "tiny-t5"): "no bias tensors"}


def test_the_matrix_covers_builtins_and_the_example_plugin() -> None:
    assert "ia3" in METHODS and registry.method_origin("ia3").package == "petl-ia3"
    assert {"full", "lora", "mam", "prompt", "fpt", "fpt-attn", "fpt-both", "bitfit"} <= set(METHODS)
    # Lu et al.'s six baselines are not methods: they run fpt and full, which the matrix holds to the contract
    assert not {"fpt-random", "fpt-stats", "fpt-bit", "vit-init", "full-scratch", "lstm"} & set(METHODS)
    assert len(METHODS) * len(contract.BACKBONES) == 192  # 32 methods: 27 + five reference-code twins (-ref)


@pytest.mark.parametrize("backbone", contract.BACKBONES)
@pytest.mark.parametrize("name", METHODS)
def test_every_method_holds_the_contract(name: str, backbone: str) -> None:
    try:
        result = contract.check_backbone(registry.get_method(name), backbone)
    except contract.Broken as e:
        pytest.fail(f"{name} on {backbone}: {e.rule} rule broken: {e}")
    if (name, backbone) in SKIPS:
        assert result.status == "skipped" and SKIPS[name, backbone] in result.detail, result.detail
    else:
        assert result.status == "ok", result.detail


def test_unfrozen_tensors_count_once() -> None:
    """T5's relative position bias sits in the first attention sub-layer of each stack, so FPT's `positions`
    and `attention` sites both name it: 2 stacks × 32 buckets × 4 heads = 256 elements, once."""
    model = contract.build("tiny-t5")
    method = registry.get_method("fpt-attn")
    anat = anatomy(model)
    per_mod = sum(FORMS[m.form].formula(model, anat, m) for m in method.mods)
    shared = sum(p.numel() for n, p in model.named_parameters() if "relative_attention_bias" in n)
    assert shared == 256
    assert method.formula(model) == per_mod - shared
    rows = count(model, method)
    assert rows[-2].label.startswith("tensors unfrozen by several") and rows[-2].true == -256
    assert sum(r.true for r in rows) == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_cli_checks_every_method_when_none_is_named(capsys: pytest.CaptureFixture) -> None:
    from benchmark.cli import main

    assert main(["plugins", "check", "--backbone", "tiny-bert"]) == 0
    out = capsys.readouterr().out
    assert out.count("contract holds on 1 backbone(s)") == len(METHODS)
