"""Baselines name the backbone and the weights a method trains on; methods say only what trains. The LSTM's and
ViT's reference-code variants are backbone options that enter the run's identity and its record."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from benchmark import registry
from benchmark.backbones.fpt import build_backbone
from benchmark.backbones.lstm import LayerNormLSTMLayer
from benchmark.baselines import BUILTIN, INITS
from benchmark.config import Run, load_config
from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.tasks.bits import BitXor
from benchmark.train import train_run

REF = {"lstm-ref": {"method": "full", "backbone": "tiny-lstm", "init": "random",
                    "backbone_options": {"cell": "layer-norm"}},
       "lstm-plain": {"method": "full", "backbone": "tiny-lstm", "init": "random"},
       "vit-ref": {"method": "fpt", "backbone": "tiny-vit", "backbone_options": {"positions": "fresh"}},
       "vit-plain": {"method": "fpt", "backbone": "tiny-vit"}}
TASK = {"bit-xor": {"backbone": "tiny-gpt2", "options": {"eval_size": 16},
                    "train": {"max_steps": 2, "batch_size": 4, "eval_steps": None, "save_steps": 2}}}


def config(methods: list[str]):
    return load_config({"baselines": REF, "tasks": TASK, "grid": [{"tasks": ["bit-xor"], "methods": methods}]})


def spec_of(cfg, name: str):
    return cfg.specs[Run.of("bit-xor", name, "default", 1)]


def test_every_builtin_baseline_runs_a_method_without_its_own_backbone_choice() -> None:
    for name, b in BUILTIN.items():
        method = registry.get_method(b.method)
        assert "init" not in method.to_dict(), name
        assert b.init in INITS and name not in registry.methods()
    assert {n: (b.method, b.backbone, b.init) for n, b in BUILTIN.items()} == {
        "fpt-random": ("fpt", None, "random"), "fpt-stats": ("fpt", None, "stats"), "fpt-bit": ("fpt", None, "bit"),
        "vit-init": ("fpt", "vit-base", "pretrained"), "full-scratch": ("full", None, "random"),
        "lstm": ("full", "lstm", "random")}


def test_a_baseline_row_keeps_its_name_and_names_the_backbone_that_trained() -> None:
    cfg = load_config({"tasks": {"bit-xor": {"backbone": "gpt2"}},
                       "grid": [{"tasks": ["bit-xor"], "methods": ["lstm", "vit-init", "fpt-random", "fpt"]}]})
    lstm, vit, rnd, fpt = (spec_of(cfg, n) for n in ("lstm", "vit-init", "fpt-random", "fpt"))
    assert (lstm.method_name, lstm.trained_backbone, lstm.init, lstm.paper["backbone"]) == ("lstm", "lstm", "random",
                                                                                             "lstm")
    assert lstm.task.backbone_options == {"cell": "plain"} and lstm.method["baseline"]["method"] == "full"
    assert (vit.trained_backbone, vit.init, vit.task.backbone_options) == ("vit-base", "pretrained",
                                                                            {"positions": "interpolate"})
    assert (rnd.trained_backbone, rnd.init, rnd.method["compose"]) == ("gpt2", "random", fpt.method["compose"])
    assert rnd.digest != fpt.digest and fpt.init == "pretrained" and "baseline" not in fpt.method


@pytest.mark.parametrize("bad, message", [
    ({"b": {"backbone": "lstm"}}, r"baselines\.b\.method: required"),
    ({"b": {"method": "fpt-random"}}, r"baselines\.b\.method: 'fpt-random' is a baseline; name the method it runs "
                                      r"\('fpt'\)"),
    ({"b": {"method": "fpt", "init": "scratch"}}, r"baselines\.b\.init: 'scratch' is not one of pretrained, random"),
    ({"b": {"method": "fpt", "weights": "x"}}, r"baselines\.b: unknown key\(s\) \['weights'\]; valid: method"),
    ({"b": {"method": "full", "backbone": "lstm", "backbone_options": {"cells": "plain"}}},
     r"baselines\.b\.backbone_options: unknown backbone option\(s\) \['cells'\] for 'lstm'; valid: cell"),
    ({"b": {"method": "full", "backbone": "lstm", "backbone_options": {"cell": "gru"}}},
     r"baselines\.b\.backbone_options\.cell: 'gru' is not one of plain, layer-norm"),
    ({"b": {"method": "fpt", "backbone": "gpt2", "backbone_options": {"cell": "plain"}}},
     r"valid: none \(backbone 'gpt2' has no options\)"),
    ({"fpt": {"method": "full"}}, r"baselines\.fpt: 'fpt' is already a method"),
    ({"lstm": {"method": "full"}}, r"baselines\.lstm: 'lstm' is already a built-in baseline"),
])
def test_a_bad_baseline_is_refused_at_planning_naming_the_key(bad, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"baselines": bad, "grid": [{"tasks": ["bit-xor"], "methods": ["fpt"]}]})


def test_task_instances_take_backbone_options_too() -> None:
    cfg = load_config({"tasks": {"bit-xor": {"backbone": "tiny-lstm", "backbone_options": {"cell": "layer-norm"}}},
                       "grid": [{"tasks": ["bit-xor"], "methods": ["full"]}]})
    assert spec_of(cfg, "full").task.to_json()["backbone_options"] == {"cell": "layer-norm"}
    with pytest.raises(ConfigError, match=r"tasks\.bit-xor\.backbone_options\.positions: 'fixed' is not one of"):
        load_config({"tasks": {"bit-xor": {"backbone": "tiny-vit", "backbone_options": {"positions": "fixed"}}},
                     "grid": [{"tasks": ["bit-xor"], "methods": ["fpt"]}]})


def test_backbones_without_options_keep_their_spec_and_digest_shape() -> None:
    """Only LSTM and ViT have options: every other run's task block (and so its digest) is as before."""
    spec = spec_of(config(["fpt"]), "fpt")
    assert "backbone_options" not in spec.task.to_json() and "backbone_options" not in spec.task.identity()


def test_the_reference_variants_are_other_runs() -> None:
    cfg = config(["lstm-ref", "lstm-plain", "vit-ref", "vit-plain"])
    lref, lplain, vref, vplain = (spec_of(cfg, n) for n in ("lstm-ref", "lstm-plain", "vit-ref", "vit-plain"))
    assert lref.task.identity()["backbone_options"] == {"cell": "layer-norm"}
    assert lplain.task.identity()["backbone_options"] == {"cell": "plain"}
    assert vref.task.backbone_options == {"positions": "fresh"}
    assert len({s.variant for s in (lref, lplain, vref, vplain)}) == 4


def _settings(backbone: str, **options: str) -> TaskSettings:
    return dataclasses.replace(TaskSettings.of(BitXor(), backbone=backbone), backbone_options=options)


def test_the_plain_lstm_is_torchs_without_dropout_and_the_reference_is_layer_normed_with_dropout() -> None:
    plain = build_backbone(_settings("tiny-lstm"), "random", 0)
    assert isinstance(plain.lstm, torch.nn.LSTM) and plain.lstm.dropout == 0.0 and not hasattr(plain, "layers")
    ref = build_backbone(_settings("tiny-lstm", cell="layer-norm"), "random", 0)
    assert not hasattr(ref, "lstm") and len(ref.layers) == 2  # tiny-lstm: 2 layers of width 32
    assert all(layer.dropout == 0.1 for layer in ref.layers)
    widths = {n: tuple(p.shape) for n, p in ref.layers[0].named_parameters()}
    assert widths == {"i2h.weight": (128, 32), "i2h.bias": (128,), "h2h.weight": (128, 32), "h2h.bias": (128,),
                      "ln_i2h.weight": (128,), "ln_i2h.bias": (128,), "ln_h2h.weight": (128,),
                      "ln_h2h.bias": (128,), "ln_cell.weight": (32,), "ln_cell.bias": (32,)}


def _reference_step(layer: LayerNormLSTMLayer, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """One step of kzl/universal-computation's LayerNormLSTM (cln=False), written from its source."""
    def ln(norm, v):
        v = (v - v.mean(1, keepdim=True)) / torch.sqrt(v.var(1, keepdim=True) + 1e-6)
        return norm.weight * v + norm.bias

    d = layer.d
    preact = ln(layer.ln_i2h, layer.i2h(x)) + ln(layer.ln_h2h, layer.h2h(h))
    gates = preact[:, :3 * d].sigmoid()
    g = preact[:, 3 * d:].tanh()
    i, f, o = gates[:, :d], gates[:, d:2 * d], gates[:, -d:]
    c = ln(layer.ln_cell, c * f + i * g)
    return o * c.tanh(), c


def test_the_layer_norm_cell_computes_the_reference_equations() -> None:
    torch.manual_seed(3)
    layer = LayerNormLSTMLayer(6, 5, dropout=0.1).eval()
    x = torch.randn(2, 4, 6)
    std = math.sqrt(2.0 / (6 + 5))
    torch.manual_seed(9)
    h, c = torch.empty(2, 5).normal_(0, std), torch.empty(2, 5).normal_(0, std)  # the reference's initial state
    expected = []
    for t in range(4):
        h, c = _reference_step(layer, x[:, t], h, c)
        expected.append(h)
    torch.manual_seed(9)
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, torch.stack(expected, 1), atol=1e-6, rtol=1e-5)
    layer.train()
    torch.manual_seed(9)
    dropped = layer(x)
    assert (dropped == 0).any() and not torch.equal(dropped, out)  # dropout 0.1 acts in training


def test_vit_positions_interpolate_the_pretrained_table_or_start_a_fresh_1024_row_one() -> None:
    interp = build_backbone(_settings("tiny-vit"), "pretrained", 0)
    assert interp.position_embeddings.weight.shape == (64, 32)  # tiny-vit: 32×32 images of 4×4 patches
    assert interp.positions(128).shape == (128, 32)  # longer inputs read the interpolated table
    fresh = build_backbone(_settings("tiny-vit", positions="fresh"), "pretrained", 0)
    table = fresh.position_embeddings.weight
    assert table.shape == (1024, 32) and not table.any() and table.requires_grad
    torch.testing.assert_close(fresh.positions(10), table[:10])


def test_the_record_says_which_backbone_options_and_init_ran(tmp_path) -> None:
    spec = spec_of(config(["lstm-ref"]), "lstm-ref")
    record = train_run(spec, tmp_path / "run")
    assert record["status"] == "ok" and record["backbone"] == "tiny-lstm"
    assert record["config"]["task"]["backbone_options"] == {"cell": "layer-norm"}
    assert record["config"]["method"]["init"] == "random"
    assert record["config"]["method"]["baseline"] == {**REF["lstm-ref"], "name": "lstm-ref", "description": "",
                                                      "source": "config"}
    assert record["params"]["trainable"] == record["params"]["total"]  # full: every LSTM weight trains


@pytest.mark.parametrize("backbone, method", [("lstm", "full"), ("gpt2-3layer", "fpt"), ("gpt2-3layer", "fpt-stats")])
def test_a_backbone_without_weights_runs_only_from_a_random_init(backbone, method) -> None:
    """Built anyway, it would be random weights recorded as pretrained (or statistics-matched) ones."""
    with pytest.raises(ConfigError, match=rf"tasks\.bit-xor\.backbone with method '{method}' .*backbone '{backbone}' is "
                                          rf"a random-init config with no pretrained weights"):
        load_config({"tasks": {"bit-xor": {"backbone": backbone}}, "grid": [{"tasks": ["bit-xor"], "methods": [method]}]})
    cfg = load_config({"tasks": {"bit-xor": {"backbone": backbone}},
                       "grid": [{"tasks": ["bit-xor"], "methods": ["full-scratch", "fpt-random"]}]})
    assert {s.init for s in cfg.specs.values()} == {"random"}
