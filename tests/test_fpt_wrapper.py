"""The FPT wrapper: what each ablation trains (names and count, from the paper's definitions), padding,
backbone families (GPT-2, BERT, T5 encoder, ViT, LSTM), statistics-only and Bit-pretrained inits."""
from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import yaml

from benchmark import registry
from benchmark.backbones.fpt import FPTModel, build_backbone
from benchmark.backbones.registry import build_model
from benchmark.baselines import BUILTIN
from benchmark.config import load_config
from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.methods.space import method_from_dict
from benchmark.tasks.bits import BitXor
from benchmark.tasks.listops import ListOps
from benchmark.train import convergence

L = 2  # layers of the tiny backbones
LN = {f"backbone.h.{i}.ln_{j}.{w}" for i in range(L) for j in (1, 2) for w in ("weight", "bias")} | {
    "backbone.ln_f.weight", "backbone.ln_f.bias"}
HEAD = {"output_layer.weight", "output_layer.bias"}
INPUT = {"input_layer.weight", "input_layer.bias"}
POS = {"backbone.wpe.weight"}
FFN = {f"backbone.h.{i}.mlp.{m}.{w}" for i in range(L) for m in ("c_fc", "c_proj") for w in ("weight", "bias")}
ATTN = {f"backbone.h.{i}.attn.{m}.{w}" for i in range(L) for m in ("c_attn", "c_proj") for w in ("weight", "bias")}
# Lu et al.'s ablations, written from the paper (GPT-2 names), not from the code under test
EXPECTED = {
    "fpt-output-only": HEAD,
    "fpt-ln": HEAD | LN,
    "fpt-ln-input": HEAD | LN | INPUT,
    "fpt": HEAD | LN | INPUT | POS,
    "fpt-ffn": HEAD | LN | INPUT | POS | FFN,
    "fpt-attn": HEAD | LN | INPUT | POS | ATTN,
    "fpt-both": HEAD | LN | INPUT | POS | FFN | ATTN,
}


def settings(task, backbone: str = "tiny-gpt2", **options) -> TaskSettings:
    return TaskSettings.of(task, backbone=backbone, **options)


def model_with(method: str, backbone: str = "tiny-gpt2", task=None) -> tuple[torch.nn.Module, list[str]]:
    task = task or BitXor()
    m = registry.get_method(method)
    model = task.build_model(settings(task, backbone), "pretrained", 0)
    return model, m.apply(model)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_ablation_trains_exactly_its_definition(method):
    model, names = model_with(method)
    assert set(names) == EXPECTED[method] and len(names) == len(EXPECTED[method])
    params = dict(model.named_parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(params[n].numel() for n in EXPECTED[method])


def test_fpt_plus_both_is_everything_but_the_unused_token_table():
    model, names = model_with("fpt-both")
    assert set(names) == {n for n, _ in model.named_parameters()} - {"backbone.wte.weight"}
    _, full = model_with("full")
    assert set(full) == {n for n, _ in model.named_parameters()} - {"backbone.wte.weight"}


TOKEN_TABLE = {"tiny-gpt2": "backbone.wte.weight", "tiny-bert": "backbone.embeddings.word_embeddings.weight",
               "tiny-t5": "backbone.shared.weight", "minilm-l6": "backbone.embeddings.word_embeddings.weight"}


# (method, init): Lu et al.'s Full is the `full-scratch` baseline, i.e. method `full` from a random init
ROWS = {"full": ("full", "pretrained"), "full-scratch": ("full", "random"), "fpt": ("fpt", "pretrained")}


@pytest.mark.parametrize("row", sorted(ROWS))
@pytest.mark.parametrize("backbone", sorted(TOKEN_TABLE))
def test_the_unread_token_table_never_trains_is_never_counted_and_never_saved(backbone, row, tmp_path):
    """Behind FPT's input layer the backbone's token table is never read: under every method it stays frozen, out
    of the trainable count, the paper formula and the delta (full training on MiniLM used to save 11.7M idle
    parameters per run, half the model)."""
    from safetensors.torch import load_file

    from benchmark.methods.delta import save_delta
    from benchmark.train import count_params

    method, init = ROWS[row]
    m = registry.get_method(method)
    model = BitXor().build_model(settings(BitXor(), backbone), init, 0)
    params = dict(model.named_parameters())
    table = params[TOKEN_TABLE[backbone]]
    x = torch.rand(2, BitXor.options["n_bits"], 1)
    with torch.no_grad():
        before = model.eval()(inputs=x).logits
        table.add_(1.0)
        assert torch.equal(model(inputs=x).logits, before)  # the output does not depend on it: really unread
    names = set(m.apply(model))
    expected = set(params) - {TOKEN_TABLE[backbone]} if m.train_all else names
    assert names == expected and not table.requires_grad
    counts = count_params(model)
    assert counts["trainable"] == sum(params[n].numel() for n in expected)
    assert counts["total"] == sum(p.numel() for p in params.values())  # still part of the model, only frozen
    # the formula counts the backbone's share: without the head, and under full training without the new input layer
    outside = [model.output_layer, *([model.input_layer] if m.train_all else [])]
    assert m.formula(model) == counts["trainable"] - sum(p.numel() for o in outside for p in o.parameters())
    assert set(load_file(save_delta(model, tmp_path / "delta.safetensors", m))) == expected
    if backbone == "minilm-l6" and m.train_all:
        assert table.numel() == 30522 * 384 and counts["trainable"] == counts["total"] - 30522 * 384


def test_unfreezing_the_unread_token_table_is_refused_by_name():
    method = method_from_dict("emb", {"compose": [{"form": "unfreeze", "site": "embeddings"}]})
    model = BitXor().build_model(settings(BitXor()), "pretrained", 0)
    with pytest.raises(ConfigError, match="unfreeze@embeddings: .*never read; unfreeze 'input' instead"):
        method.apply(model)


def test_fpt_on_bert_trains_norms_positions_input_and_head():
    model, names = model_with("fpt", "tiny-bert")
    assert {n for n in names if not n.startswith("backbone.")} == HEAD | INPUT
    backbone = {n.removeprefix("backbone.") for n in names if n.startswith("backbone.")}
    assert backbone == {n for n, _ in model.backbone.named_parameters()
                        if "LayerNorm" in n or n == "embeddings.position_embeddings.weight"}


@pytest.mark.parametrize("backbone", ["tiny-gpt2", "tiny-bert", "tiny-t5", "tiny-vit", "tiny-lstm"])
def test_padding_is_masked_and_the_readout_takes_the_last_real_token(backbone):
    torch.manual_seed(0)
    task = ListOps()
    model = task.build_model(settings(task, backbone), "random", 0).eval()
    short, long = torch.tensor([3, 14, 5, 15]), torch.tensor([3, 14, 5, 6, 7, 15])
    batch = task_collate(task, [short, long])
    with torch.no_grad():
        both = model(**batch).logits
        alone = model(inputs=short[None], attention_mask=torch.ones(1, 4, dtype=torch.long)).logits
    assert both.shape == (2, 10)
    torch.testing.assert_close(both[0], alone[0], atol=1e-5, rtol=1e-4)


def task_collate(task, seqs: list[torch.Tensor]) -> dict:
    data = task.data(settings(task, eval_size=1, min_length=1, max_length=3, max_depth=2), 0, None)
    return data.collate([{"inputs": s, "labels": torch.tensor(0)} for s in seqs])


@pytest.mark.parametrize("swap, family", [("tiny-vit", "vit"), ("tiny-lstm", "lstm")])
def test_a_baseline_backbone_replaces_the_architecture(swap, family):
    cfg = load_config({"baselines": {"swap": {"method": "fpt-output-only", "backbone": swap, "init": "random"}},
                       "tasks": {"bit-xor": {"backbone": "tiny-gpt2"}},
                       "grid": [{"tasks": ["bit-xor"], "methods": ["swap"]}]})
    (spec,) = cfg.specs.values()
    assert (spec.task.backbone, spec.trained_backbone, spec.init, spec.paper["backbone"]) == (swap, swap, "random", swap)
    model = BitXor().build_model(spec.task, spec.init, 0)
    names = cfg.method("swap").apply(model)
    assert model.config.model_type == family
    assert set(names) == HEAD
    out = model(inputs=torch.rand(3, 10, 1), labels=torch.zeros(3, 5, dtype=torch.long))
    assert out.logits.shape == (3, 5, 2) and torch.isfinite(out.loss)


@pytest.mark.parametrize("init, backbone", [("backbone:lstm", "lstm"), ("random", "tiny-gpt2")])
def test_a_method_with_the_old_init_key_is_told_the_baseline_to_write(init, backbone):
    old = {"methods": {"x": {"train_all": True, "init": init}}, "tasks": {"bit-xor": {"backbone": "tiny-gpt2"}},
           "grid": [{"tasks": ["bit-xor"], "methods": ["x"]}]}
    with pytest.raises(ConfigError, match=r"methods\.x\.init: a method says only what trains") as e:
        load_config(old)
    methods, baselines = (yaml.safe_load(snippet) for snippet in re.findall(r"`(methods: .*?|baselines: .*?)`",
                                                                            str(e.value)))
    (spec,) = load_config({**old, **methods, **baselines}).specs.values()  # the advice, followed, plans the row
    assert (spec.method_name, spec.trained_backbone, spec.init, spec.method["train_all"]) == ("x", backbone,
                                                                                              "random", True)


def test_an_unknown_baseline_backbone_is_a_config_error():
    with pytest.raises(ConfigError, match=r"baselines\.b\.backbone: unknown backbone 'gpt9'"):
        load_config({"baselines": {"b": {"method": "fpt", "backbone": "gpt9"}},
                     "grid": [{"tasks": ["bit-xor"], "methods": ["b"]}]})


def test_the_lstm_baseline_trains_every_lstm_weight():
    b = BUILTIN["lstm"]
    assert (b.method, b.backbone, b.init) == ("full", "lstm", "random")
    s = settings(BitXor(), "tiny-lstm")
    model = BitXor().build_model(s, b.init, 0)
    names = registry.get_method(b.method).apply(model)
    assert set(names) == {n for n, _ in model.named_parameters()}


def test_statistics_only_init_matches_each_pretrained_tensor():
    pretrained = dict(build_model("minilm-l6").named_parameters())
    stats = dict(build_model("minilm-l6", init="stats", seed=5).named_parameters())
    assert stats.keys() == pretrained.keys()
    for name, p in pretrained.items():
        q = stats[name]
        if p.numel() < 2:
            continue
        torch.testing.assert_close(q.mean(), p.mean(), atol=1e-6, rtol=1e-4, msg=name)
        torch.testing.assert_close(q.std(), p.std(), atol=1e-6, rtol=1e-4, msg=name)
        if p.std() > 0:
            assert not torch.allclose(q, p), name  # the values themselves are redrawn
    one, two = (dict(build_model("tiny-bert", init="stats", seed=5).named_parameters()) for _ in range(2))
    assert all(torch.equal(one[n], two[n]) for n in one)  # a seed fixes the draw


def test_bit_init_loads_the_pretrained_checkpoint(tmp_path):
    source = build_model("tiny-gpt2", seed=7)
    source.save_pretrained(tmp_path)
    s = dataclasses.replace(settings(BitXor()), backbone_path=str(tmp_path))
    loaded = build_backbone(s, "bit", 0)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values()))
    with pytest.raises(ConfigError, match="Bit-Memory-pretrained"):
        build_backbone(settings(BitXor()), "bit", 0)


def test_convergence_reads_the_eval_curve():
    curve = [{"step": 50, "eval_accuracy": 60.0}, {"step": 100, "eval_accuracy": 95.5},
             {"step": 150, "eval_accuracy": 99.5}, {"step": 200, "eval_accuracy": 99.0}]
    out = convergence(curve, "eval_accuracy", [90.0, 99.9])
    assert out["steps_to"] == {"90.0": 100, "99.9": None} and out["best"] == 99.5
    assert out["steps_to_99pct_of_best"] == 150


def test_fpt_model_shapes_for_many_outputs():
    model = FPTModel(build_model("tiny-bert"), 50, 20, 50, 2)
    out = model(inputs=torch.rand(2, 120, 50), labels=torch.zeros(2, 1000, dtype=torch.long))
    assert out.logits.shape == (2, 1000, 2)


@pytest.mark.parametrize("backbone", ["tiny-gpt2", "tiny-bert", "tiny-t5"])
def test_the_wrapped_model_saves_as_the_trainer_saves_it(backbone, tmp_path):
    """The Trainer checkpoints a plain nn.Module with safetensors, which refuses two names for one tensor (T5's
    encoder aliased the shared token table, so every FPT run on T5 died at its first checkpoint)."""
    from safetensors.torch import load_file, save_file

    model = BitXor().build_model(settings(BitXor(), backbone), "random", 0)
    state = model.state_dict()
    save_file(state, tmp_path / "model.safetensors")
    assert load_file(tmp_path / "model.safetensors").keys() == state.keys()
