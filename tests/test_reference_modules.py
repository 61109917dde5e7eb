"""He et al.'s reference-code module choices as `-ref` presets: each computes what
jxhe/unify-parameter-efficient-tuning computes (written out here from its petl_factory.py / modeling_bart.py), while
the defaults stay as they were (no LayerNorm, lora init, no dropout, the attention's own query) and still start as
the frozen backbone's function."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.backbones.anatomy import anatomy
from benchmark.backbones.registry import build_model
from benchmark.errors import ConfigError
from benchmark.methods.bottleneck import Adapter, HeadAdapter, dropout_rate
from benchmark.methods.prefix import Prefix
from benchmark.methods.presets import PRESETS
from benchmark.methods.space import method_from_dict
from methods_util import hidden, inputs, one_thread, tiny  # noqa: F401


def reference_adapter(x: torch.Tensor, a: Adapter) -> torch.Tensor:
    """Adapter_Layer.forward(x, add_residual=False) with layernorm option "in", in eval mode."""
    h = F.layer_norm(x, x.shape[-1:], a.ln_in.weight, a.ln_in.bias)
    return F.linear(F.relu(F.linear(h, a.down.weight, a.down.bias)), a.up.weight, a.up.bias)


def adapters(model: torch.nn.Module, kind: type) -> list:
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("name", ["pa-attn-ref", "sa-attn-ref"])
def test_reference_attention_adapter_has_input_layernorm_bert_init_and_the_attentions_dropout(name: str) -> None:
    model = tiny("tiny-bart")
    model.config.attention_dropout = 0.25  # the reference passes its attention layer's dropout rate
    PRESETS[name].apply(model)
    found = adapters(model, Adapter)
    assert len(found) == len(anatomy(model).attn) == 6
    a = found[0].eval()
    assert isinstance(a.ln_in, torch.nn.LayerNorm) and a.dropout.p == 0.25
    # "bert" init: N(0, 0.02) weights (so not zero: not identity at init), zero biases, LayerNorm 1 / 0
    ups = torch.cat([f.up.weight.flatten() for f in found])
    assert 0.015 < ups.std() < 0.025 and abs(ups.mean()) < 0.005 and not PRESETS[name].identity_at_init
    assert all(f.up.bias.abs().sum() == 0 and f.down.bias.abs().sum() == 0 for f in found)
    x = torch.randn(2, 5, 32)
    assert torch.allclose(a(x), reference_adapter(x, a), atol=1e-6)
    a.train()  # dropout after the ReLU, only when training
    torch.manual_seed(0)
    assert not torch.allclose(a(x), reference_adapter(x, a))


def test_the_default_attention_adapters_are_unchanged() -> None:
    model = tiny("tiny-bart")
    PRESETS["pa-attn"].apply(model)
    a = adapters(model, Adapter)[0]
    assert isinstance(a.ln_in, torch.nn.Identity) and a.dropout.p == 0.0 and a.up.weight.abs().sum() == 0
    assert PRESETS["pa-attn"].identity_at_init and PRESETS["mh-pa"].identity_at_init


def test_houlsby_ref_ffn_adapter_uses_bert_init_and_the_layers_dropout() -> None:
    model = tiny("tiny-bart")
    model.config.dropout, model.config.attention_dropout = 0.2, 0.05
    PRESETS["adapter-houlsby-ref"].apply(model)
    found = adapters(model, Adapter)
    rates = sorted({(isinstance(f.ln_in, torch.nn.LayerNorm), f.dropout.p) for f in found})
    assert rates == [(False, 0.2), (True, 0.05)]  # FFN: no LayerNorm, hidden dropout; attention: LN in, attn dropout
    assert all(f.up.weight.abs().sum() > 0 for f in found)


def test_named_dropout_reads_each_family_config() -> None:
    rates = {name: (dropout_rate(build_model(name, meta=True), "attention"),
                    dropout_rate(build_model(name, meta=True), "hidden"))
             for name in ("bart-large", "mbart-large-cc25", "roberta-base", "gpt2")}
    assert rates == {"bart-large": (0.1, 0.1), "mbart-large-cc25": (0.0, 0.1), "roberta-base": (0.1, 0.1),
                     "gpt2": (0.1, 0.1)}


def test_mh_pa_ref_reads_an_unscaled_query_through_a_layernorm_and_still_starts_as_identity() -> None:
    name = "tiny-roberta"
    base, model = tiny(name), tiny(name)
    PRESETS["mh-pa-ref"].apply(model)
    batch = inputs(name)
    assert torch.allclose(hidden(model, batch), hidden(base, batch), atol=1e-6)  # zero up: identity at init
    head = adapters(model, HeadAdapter)[0]
    site = anatomy(model).attn[0]
    with torch.no_grad():
        head.up.normal_(std=0.5)
        head.query_norm.norm.weight.normal_()
    x = torch.randn(2, 5, 32)
    head.query_norm._input.value = x  # what the attention sub-layer's pre-hook captures
    got = head.delta(torch.zeros(2, 4, 5, 8), scaling=8 ** -0.5)  # the attention's own query is not read
    # modeling_bart.py, attn_option "cross_attn_relu": q_proj(LN(x)), no scaling, relu(q Pkᵀ) Pv per head
    q = site.q.module(head.query_norm.norm(x)).view(2, 5, 4, 8).transpose(1, 2)
    want = torch.einsum("bhtr,hrd->bthd", F.relu(torch.einsum("bhtd,hrd->bhtr", q, head.down)), head.up)
    assert torch.allclose(got, want, atol=1e-5)
    default = HeadAdapter(site, 200, PRESETS["mh-pa"].mods[0], torch.device("cpu"))
    assert default.query_norm is None and default.query_scaling


def test_prefix_nogate_ref_reads_a_scaled_query_through_a_layernorm() -> None:
    name = "tiny-gpt2"  # the fused c_attn projection: the query is its first slice
    model = tiny(name)
    PRESETS["prefix-nogate-ref"].apply(model)
    prefix = adapters(model, Prefix)[0]
    site = anatomy(model).attn[0]
    with torch.no_grad():
        prefix.query_norm.norm.weight.normal_()
        prefix.query_norm.norm.bias.normal_()
    x = torch.randn(2, 5, 32)
    prefix.query_norm._input.value = x
    scaling = 8 ** -0.5
    got = prefix.delta(torch.zeros(2, 4, 5, 8), scaling)
    # attn_option "cross_attn": q_proj(LN(x)) * scaling, softmax over the prefix keys, times the prefix values
    q = site.q.module(prefix.query_norm.norm(x))[..., :32].view(2, 5, 4, 8).transpose(1, 2)
    k, v = prefix.table()
    want = (torch.softmax(q @ k.transpose(-1, -2) * scaling, -1) @ v).transpose(1, 2)
    assert torch.allclose(got, want, atol=1e-5)
    out = hidden(model, inputs(name))  # and the whole model runs with it
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("compose, error", [
    ({"form": "prefix", "l": 4, "query_norm": True}, "query_norm needs composition 'add'"),
    ({"form": "bottleneck", "site": "attn", "r": 4, "query_norm": True}, "applies to site 'attn_heads'"),
    ({"form": "bottleneck", "site": "ffn", "r": 4, "dropout": "lots"}, "must be a rate in \\[0, 1\\) or one of"),
    ({"form": "bottleneck", "site": "ffn", "r": 4, "dropout": 1.5}, "must be a rate"),
])
def test_reference_options_are_checked(compose: dict, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        method_from_dict("x", {"compose": [compose]})


def test_reference_twins_change_the_run_identity() -> None:
    from benchmark.config import load_config

    cfg = load_config({"grid": [{"tasks": ["sst2"], "methods": ["pa-attn", "pa-attn-ref"]}]})
    digests = {s.method_name: s.digest for s in cfg.specs.values()}
    assert digests["pa-attn"] != digests["pa-attn-ref"]
