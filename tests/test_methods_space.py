"""Shared contracts for every named method on every tiny backbone: identity at init, learning, gradients only
where intended (and always the task head), and counts equal to He et al.'s closed forms."""
from __future__ import annotations

import pytest
import torch

from benchmark.backbones.anatomy import anatomy, core_of
from benchmark.errors import ConfigError
from benchmark.methods.prefix import PrefixForm
from benchmark.methods.presets import PRESETS
from benchmark.methods.space import FORMS, method_from_dict
from methods_util import NAMED, TINY, hidden, inputs, meta, one_thread, supported, tiny  # noqa: F401

PAIRS = [(b, m) for b in TINY for m in NAMED if supported(b, m)]


EXPECTED = {  # what the non-head trainable tensors of each method must look like
    "full": lambda n: ".petl_" not in f".{n}",
    "bitfit": lambda n: n.endswith("bias"),
    "prompt": lambda n: "petl_prompt_" in n,
    "lora": lambda n: "petl_lowrank_" in n, "lora-ffn": lambda n: "petl_lowrank_" in n,
}


@pytest.mark.parametrize("name", NAMED)
def test_each_method_trains_the_tensors_its_name_says(name: str) -> None:
    """Beyond the contract's accounting (tests/test_method_contract.py): the kind of tensor each named method
    trains, and the classification head always (the reference code left RoBERTa's frozen)."""
    model = tiny("tiny-bart", "seq-cls")
    applied = PRESETS[name].apply(model)
    assert applied.head and set(applied.head) <= set(applied)
    ok = EXPECTED.get(name, lambda n: ".petl_" in f".{n}")
    rest = set(applied) - set(applied.head)
    assert rest and all(ok(n) for n in rest), sorted(n for n in rest if not ok(n))


def _paper_formula(name: str, backbone: str, model: torch.nn.Module) -> int:
    """He et al. Tables 10/11 written out from the architecture's dimensions, independently of the forms."""
    cfg = core_of(model).config
    anat = anatomy(model)
    d, n_attn, n_ffn = anat.d_model, len(anat.attn), len(anat.ffn)
    d_ff = anat.ffn[0].up.out_features
    sizes = {m.form: (m.l or m.r) for m in PRESETS[name].mods}
    r = {i: m.r for i, m in enumerate(PRESETS[name].mods)}
    table = {
        "prompt": lambda: sizes["prompt"] * d,
        "prefix": lambda: 2 * sizes["prefix"] * d * n_attn,
        "prefix-nogate": lambda: 2 * sizes["prefix"] * d * n_attn,
        "adapter-houlsby": lambda: 2 * r[0] * d * n_attn + 2 * r[1] * d * n_ffn,
        "adapter-pfeiffer": lambda: 2 * r[0] * d * n_ffn,
        "sa-attn": lambda: 2 * r[0] * d * n_attn, "sa-ffn": lambda: 2 * r[0] * d * n_ffn,
        "lora": lambda: 4 * r[0] * d * n_attn,
        "lora-ffn": lambda: 2 * r[0] * (d + d_ff) * n_ffn,  # 10·r·d when d_ff = 4d
        "pa-attn": lambda: 2 * r[0] * d * n_attn, "pa-ffn": lambda: 2 * r[0] * d * n_ffn,
        "mh-pa": lambda: 2 * r[0] * d * n_attn,
        "scaled-pa": lambda: 2 * r[0] * d * n_ffn, "scaled-pa-learned": lambda: 2 * r[0] * d * n_ffn,
        "mam": lambda: 2 * sizes["prefix"] * d * n_attn + 2 * r[1] * d * n_ffn,
        "pa-attn+pa-ffn": lambda: 2 * r[0] * d * n_attn + 2 * r[1] * d * n_ffn,
        "prefix+lora-ffn": lambda: 2 * sizes["prefix"] * d * n_attn + 2 * r[1] * (d + d_ff) * n_ffn,
        "bitfit": lambda: sum(p.numel() for n, p in core_of(model).named_parameters() if n.endswith("bias")),
        "full": lambda: sum(p.numel() for p in core_of(model).parameters()),
    }
    assert cfg is not None
    return table[name.removesuffix("-ref")]()  # a reference twin counts as its default by the paper formula


def _no_reparam(name: str):
    """The method with direct prefix tensors, so the true count has nothing the paper leaves out but biases."""
    raw = PRESETS[name].to_dict()
    compose = [{**m, "reparam": False} if m["form"] == "prefix" else m for m in raw["compose"]]
    return method_from_dict(name, {"compose": compose, "train_all": raw["train_all"]})


@pytest.mark.parametrize("backbone,name", PAIRS)
def test_counts_equal_closed_forms(backbone: str, name: str) -> None:
    """formula == He et al.'s closed form, and the tensors that train (head, biases, layer norms and learned
    scales aside) are exactly that many; the prefix MLP has its own closed form."""
    model = meta(backbone)
    method = _no_reparam(name)
    expected = _paper_formula(name, backbone, model)
    assert method.formula(model) == expected
    anat = anatomy(model)
    extras = sum(sum(FORMS[m.form].extras(model, anat, m).values()) for m in method.mods)
    applied = method.apply(model)
    true = sum(n for t in applied.mods for n in t.values()) - extras  # biases, layer norms, scales: declared
    assert true + sum(applied.backbone.values()) == expected
    with_mlp = meta(backbone)
    anat = anatomy(with_mlp)
    declared = [PrefixForm().extras(with_mlp, anat, m) for m in PRESETS[name].mods if m.form == "prefix"]
    mlp = sum(e["reparameterisation"] for e in declared)
    applied = PRESETS[name].apply(with_mlp)
    new = sum(n for m, t in zip(PRESETS[name].mods, applied.mods) if m.form == "prefix" for n in t.values())
    if mlp:  # the MLP, plus the reference twin's query LayerNorms
        assert new == mlp + sum(e.get("layer norms", 0) for e in declared)


def test_bitfit_on_t5_is_refused() -> None:
    with pytest.raises(ConfigError, match="no bias tensors"):
        PRESETS["bitfit"].apply(tiny("tiny-t5"))


def test_config_compositions_and_conflicts() -> None:
    """New combinations need no code; impossible coordinates are rejected with the key and the valid values."""
    mine = method_from_dict("mine", {"compose": [{"form": "lowrank", "site": "kv", "r": 2},
                                                 {"form": "bottleneck", "site": "attn_heads", "r": 3}]})
    model = tiny("tiny-bart")
    mine.apply(model)
    assert any("petl_bottleneck_1" in n for n, _ in model.named_parameters())
    bad = [({"form": "bottleneck", "site": "ffn", "r": 4, "composition": "gated"}, "gated"),
           ({"form": "bottleneck", "site": "attn_heads", "r": 4, "insertion": "sequential"}, "parallel"),
           ({"form": "bottleneck", "site": "ffn", "r": 4, "layer_norm": "both"}, "layer_norm"),
           ({"form": "prefix", "l": 4, "composition": "scaled"}, "gated"),
           ({"form": "prefix", "site": "ffn", "l": 4}, "has no site 'ffn'; valid: attn"),
           ({"form": "lowrank", "site": "kv", "r": 4, "insertion": "sequential"}, "valid: parallel"),
           ({"form": "prompt", "l": 4, "composition": "scaled"}, "has no composition 'scaled'; valid: add"),
           ({"form": "unfreeze"}, "needs 'site' \\(one of layer_norm, positions"),
           ({"form": "prefix", "l": 0}, "positive"),
           ({"form": "adapter", "r": 4}, "unknown functional form 'adapter'; valid: bottleneck")]
    for mod, message in bad:
        with pytest.raises(ConfigError, match=message):
            method_from_dict("bad", {"compose": [mod]})
    with pytest.raises(ConfigError, match="both put form 'prefix'"):
        method_from_dict("twice", {"compose": [{"form": "prefix", "l": 2}, {"form": "prefix", "l": 3}]})
    with pytest.raises(ConfigError, match="no attention sub-layers"):
        method_from_dict("x", {"compose": [{"form": "prefix", "l": 2, "attn_kinds": ["cross"]}]}).apply(
            tiny("tiny-bert"))


def test_adapter_options_layer_norm_and_bert_init() -> None:
    """layer_norm in/out add LayerNorms outside the formula; init 'bert' (N(0, 0.02)) does not start as identity."""
    batch = inputs("tiny-roberta")
    for ln, init in (("in", "lora"), ("out", "bert")):
        model = tiny("tiny-roberta")
        with torch.no_grad():
            before = hidden(model, batch)
        method = method_from_dict("a", {"compose": [{"form": "bottleneck", "site": "ffn", "insertion": "parallel",
                                                     "r": 4, "layer_norm": ln, "init": init, "bias": False}]})
        assert method.identity_at_init is (init == "lora")
        method.apply(model)
        with torch.no_grad():
            changed = (hidden(model, batch) - before).abs().max() > 1e-6
        assert bool(changed) == (init == "bert")
        extra = sum(p.numel() for n, p in model.named_parameters() if ".ln_" in n)
        new = sum(p.numel() for n, p in model.named_parameters() if "petl_" in n)
        assert extra == 2 * (32 + 32)  # two FFN sites, each a LayerNorm of width d=32 (weight and bias)
        assert new - extra == method.formula(model)
