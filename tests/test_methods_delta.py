"""LoRA against peft's (test-only dependency), delta save/load round trips, and merging."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from benchmark.errors import ConfigError
from benchmark.methods.delta import delta_method, load_delta, merge, save_delta
from benchmark.methods.lowrank import LowRankDelta
from benchmark.methods.presets import PRESETS
from benchmark.methods.space import method_from_dict
from methods_util import hidden, inputs, one_thread, tiny  # noqa: F401

LORA = method_from_dict("lora-test", {"compose": [{"form": "lowrank", "site": "attn", "r": 4, "alpha": 8}]})


def _randomise_lora(model: nn.Module) -> None:
    """B starts at zero; make it nonzero so the comparison means something."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, LowRankDelta):
            with torch.no_grad():
                m.up.weight.copy_(torch.randn(m.up.weight.shape, generator=g) * 0.1)


@pytest.mark.parametrize("backbone,targets", [("tiny-bert", ["query", "value"]), ("tiny-bart", ["q_proj", "v_proj"])])
def test_lora_equals_peft(backbone: str, targets: list[str]) -> None:
    peft = pytest.importorskip("peft")
    ours, theirs, batch = tiny(backbone), tiny(backbone), inputs(backbone)
    LORA.apply(ours)
    _randomise_lora(ours)
    theirs = peft.get_peft_model(theirs, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                         target_modules=targets)).eval()
    copied = 0
    for name, module in theirs.named_modules():
        if name.rsplit(".", 1)[-1] in targets and hasattr(module, "lora_A"):
            host = ours.get_submodule(name.removeprefix("base_model.model."))
            mine = next(m for m in host.children() if isinstance(m, LowRankDelta))
            with torch.no_grad():
                module.lora_A["default"].weight.copy_(mine.down.weight)
                module.lora_B["default"].weight.copy_(mine.up.weight)
            copied += 1
    assert copied == sum(isinstance(m, LowRankDelta) for m in ours.modules()) > 0
    with torch.no_grad():
        torch.testing.assert_close(hidden(ours, batch), hidden(theirs, batch), rtol=1e-5, atol=1e-6)


def _train_step(model: nn.Module, batch: dict) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    out = hidden(model, batch)
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    opt.step()


@pytest.mark.parametrize("backbone,name", [("tiny-bart", "mam"), ("tiny-bart", "prompt"), ("tiny-gpt2", "lora"),
                                           ("tiny-bert", "adapter-houlsby"), ("tiny-t5", "scaled-pa-learned"),
                                           ("tiny-roberta", "bitfit"), ("tiny-mbart", "mh-pa")])
def test_delta_round_trip(tmp_path: Path, backbone: str, name: str) -> None:
    """Only the trainable tensors are written; loading them into a fresh backbone with the same method
    reproduces the trained outputs exactly."""
    method, batch = PRESETS[name], inputs(backbone)
    trained = tiny(backbone, "seq-cls" if backbone == "tiny-bert" else "base")
    method.apply(trained)
    _train_step(trained, batch)
    path = save_delta(trained, tmp_path / "delta.safetensors", method)
    stored = load_file(str(path))
    assert set(stored) == {n for n, p in trained.named_parameters() if p.requires_grad}
    assert delta_method(path).to_dict()["compose"] == method.to_dict()["compose"]

    fresh = tiny(backbone, "seq-cls" if backbone == "tiny-bert" else "base")
    method.apply(fresh)
    load_delta(fresh, path)
    trained.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(hidden(fresh, batch), hidden(trained, batch), rtol=0, atol=0)


def test_delta_refuses_a_different_method(tmp_path: Path) -> None:
    model = tiny("tiny-bert")
    PRESETS["lora"].apply(model)
    path = save_delta(model, tmp_path / "lora.safetensors", PRESETS["lora"])
    other = tiny("tiny-bert")
    PRESETS["pa-ffn"].apply(other)
    with pytest.raises(ConfigError, match="does not fit this model"):
        load_delta(other, path)


def test_merge_lora_is_exact_and_removes_the_branch() -> None:
    model, batch = tiny("tiny-gpt2"), inputs("tiny-gpt2")  # GPT-2: fused, transposed c_attn slices
    method = method_from_dict("m", {"compose": [{"form": "lowrank", "site": "qkv", "r": 3},
                                                {"form": "lowrank", "site": "ffn", "r": 2, "s": 4}]})
    n_base = sum(p.numel() for p in model.parameters())
    applied = method.apply(model)
    _randomise_lora(model)
    with torch.no_grad():
        before = hidden(model, batch)
        merge(model, method, applied)
        after = hidden(model, batch)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, LowRankDelta) for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == n_base


@pytest.mark.parametrize("name,reason", [("scaled-pa", "ReLU"), ("mam", "softmax"), ("prompt", "input tokens")])
def test_merge_refuses_nonlinear_branches(name: str, reason: str) -> None:
    model = tiny("tiny-bart")
    applied = PRESETS[name].apply(model)
    with pytest.raises(ConfigError, match=f"cannot be merged.*{reason}"):
        merge(model, PRESETS[name], applied)
