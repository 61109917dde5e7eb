"""Prefix tuning and multi-head PA against hand computations from the frozen projections."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones.anatomy import anatomy
from benchmark.methods.space import method_from_dict
from methods_util import inputs, one_thread, tiny  # noqa: F401


def _capture(core: nn.Module) -> dict[str, Any]:
    """The attention module's call (args, kwargs) and its output."""
    seen: dict[str, Any] = {}

    def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
        seen["args"], seen["kwargs"] = args, kwargs

    def post(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        seen["out"] = out[0]
    core.register_forward_pre_hook(pre, with_kwargs=True)
    core.register_forward_hook(post, with_kwargs=True)
    return seen


def _heads(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.view(*x.shape[:2], n, -1).transpose(1, 2)


def _attend(q, k, v, pk, pv, scale, allowed, bias=None) -> torch.Tensor:
    """softmax over [prefix; keys] by hand: prefix always visible, `allowed` (…, Tq, Tk) masks the real keys."""
    b = q.shape[0]
    keys = torch.cat([pk.expand(b, -1, -1, -1), k], 2)
    values = torch.cat([pv.expand(b, -1, -1, -1), v], 2)
    scores = q @ keys.transpose(-1, -2) * scale
    if bias is not None:
        scores = scores + nn.functional.pad(bias, (pk.shape[2], 0))
    visible = torch.cat([torch.ones(*allowed.shape[:-1], pk.shape[2], dtype=torch.bool), allowed], -1)
    scores = scores.masked_fill(~visible, float("-inf"))
    out = torch.softmax(scores, -1) @ values
    return out.transpose(1, 2).reshape(b, q.shape[2], -1)


def _prefix(model: nn.Module, l: int = 3, **extra: Any) -> None:
    method_from_dict("p", {"compose": [{"form": "prefix", "site": "attn", "l": l, **extra}]}).apply(model)


def _table(core: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    kv = core.petl_prefix_0.table()
    return kv[0][None], kv[1][None]


def test_prefix_is_attention_over_the_concatenation_bert() -> None:
    """BERT layer 0, right padding: output = softmax(q [Pk; K]ᵀ/√hd) [Pv; V]."""
    model, batch = tiny("tiny-bert"), inputs("tiny-bert")
    _prefix(model)
    site = anatomy(model).attn[0]
    seen = _capture(site.core)
    with torch.no_grad():
        model(**batch)
        x = seen["args"][0]
        q, k, v = (_heads(p.module(x), site.n_heads) for p in (site.q, site.k, site.v))
        pk, pv = _table(site.core)
        allowed = batch["attention_mask"].bool()[:, None, None, :].expand(-1, 1, x.shape[1], -1)
        expected = _attend(q, k, v, pk, pv, site.head_dim ** -0.5, allowed)
    torch.testing.assert_close(seen["out"], expected, rtol=1e-5, atol=1e-5)


def test_gated_prefix_equals_the_papers_interpolation() -> None:
    """He et al. eq. 7: attention over [P; K] = (1-λ) Attn(q, K, V) + λ softmax(q Pkᵀ) Pv, λ the prefix mass."""
    model, batch = tiny("tiny-bert"), {k: v[:1, :5] for k, v in inputs("tiny-bert").items()}
    _prefix(model, l=4)
    site = anatomy(model).attn[1]
    seen = _capture(site.core)
    with torch.no_grad():
        model(**batch)
        x = seen["args"][0]
        q, k, v = (_heads(p.module(x), site.n_heads) for p in (site.q, site.k, site.v))
        pk, pv = _table(site.core)
        s = site.head_dim ** -0.5
        real, pre = q @ k.transpose(-1, -2) * s, q @ pk.transpose(-1, -2) * s
        lam = pre.exp().sum(-1, keepdim=True) / (pre.exp().sum(-1, keepdim=True) + real.exp().sum(-1, keepdim=True))
        h = torch.softmax(real, -1) @ v
        delta = torch.softmax(pre, -1) @ pv
        mixed = ((1 - lam) * h + lam * delta).transpose(1, 2).reshape(1, x.shape[1], -1)
    torch.testing.assert_close(seen["out"], mixed, rtol=1e-5, atol=1e-5)


def test_prefix_causal_gpt2_without_mask() -> None:
    """GPT-2 with no attention mask (SDPA would run is_causal): the prefix stays visible to every position,
    real keys stay causal."""
    model = tiny("tiny-gpt2")
    _prefix(model, l=2, reparam=False, init_std=0.5)
    site = anatomy(model).attn[0]
    seen = _capture(site.core)
    ids = inputs("tiny-gpt2")["input_ids"]
    with torch.no_grad():
        model(input_ids=ids)
        x = seen["args"][0]
        d = site.q.width
        q, k, v = (_heads(t, site.n_heads) for t in site.q.module(x).split(d, -1))
        pk, pv = _table(site.core)
        t = x.shape[1]
        allowed = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        expected = site.o.module(_attend(q, k, v, pk, pv, site.head_dim ** -0.5, allowed))
    torch.testing.assert_close(seen["out"], expected, rtol=1e-5, atol=1e-5)


def test_prefix_t5_keeps_position_bias_on_real_keys() -> None:
    """T5 (no 1/√d scaling, relative position bias): prefix keys get no bias, real keys keep theirs."""
    model, batch = tiny("tiny-t5"), inputs("tiny-t5")
    _prefix(model, l=2)
    site = anatomy(model).attn[0]
    seen = _capture(site.core)
    with torch.no_grad():
        model(**batch)
        x = seen["args"][0]
        q, k, v = (_heads(p.module(x), site.n_heads) for p in (site.q, site.k, site.v))
        pk, pv = _table(site.core)
        t = x.shape[1]
        bias = site.core.compute_bias(t, t)
        allowed = batch["attention_mask"].bool()[:, None, None, :].expand(-1, 1, t, -1)
        expected = site.o.module(_attend(q, k, v, pk, pv, 1.0, allowed, bias))
    torch.testing.assert_close(seen["out"], expected, rtol=1e-5, atol=1e-5)


def test_prefix_bart_cross_attention() -> None:
    """BART decoder cross-attention: prefix before the encoder states, the source padding still masked."""
    model, batch = tiny("tiny-bart"), inputs("tiny-bart")
    _prefix(model, l=3)
    site = next(a for a in anatomy(model).attn if a.kind == "cross")
    seen = _capture(site.core)
    with torch.no_grad():
        model(**batch)
        x, memory = seen["args"][0], seen["kwargs"]["key_value_states"]
        q = _heads(site.q.module(x), site.n_heads)
        k, v = (_heads(p.module(memory), site.n_heads) for p in (site.k, site.v))
        pk, pv = _table(site.core)
        allowed = batch["attention_mask"].bool()[:, None, None, :].expand(-1, 1, x.shape[1], -1)
        expected = site.o.module(_attend(q, k, v, pk, pv, site.head_dim ** -0.5, allowed))
    torch.testing.assert_close(seen["out"], expected, rtol=1e-5, atol=1e-5)


def test_ungated_prefix_and_multi_head_pa_add_to_the_heads() -> None:
    """prefix-nogate: h + softmax(q Pkᵀ)Pv; MH-PA: h + ReLU(q Pkᵀ·scale) Pv, per head, before o-proj."""
    batch = inputs("tiny-bert")
    plain = tiny("tiny-bert")
    ref_seen = _capture(anatomy(plain).attn[0].core)
    with torch.no_grad():
        plain(**batch)
    for mod in ({"form": "prefix", "site": "attn", "l": 3, "composition": "add"},
                {"form": "bottleneck", "site": "attn_heads", "r": 5}):
        model = tiny("tiny-bert")
        method_from_dict("m", {"compose": [mod]}).apply(model)
        site = anatomy(model).attn[0]
        added = next(m for n, m in site.core.named_children() if n.startswith("petl_"))
        if mod["form"] == "bottleneck":
            nn.init.normal_(added.up)  # zero at init: make the branch visible
        seen = _capture(site.core)
        with torch.no_grad():
            model(**batch)
            q = _heads(site.q.module(seen["args"][0]), site.n_heads)
            s = site.head_dim ** -0.5
            if mod["form"] == "prefix":
                pk, pv = _table(site.core)
                branch = torch.softmax(q @ pk.transpose(-1, -2) * s, -1) @ pv
            else:
                branch = torch.relu(q @ added.down.transpose(-1, -2) * s) @ added.up
            expected = ref_seen["out"] + branch.transpose(1, 2).reshape(*q.shape[:1], q.shape[2], -1)
        torch.testing.assert_close(seen["out"], expected, rtol=1e-5, atol=1e-5)


def test_prefix_under_incremental_decoding_matches_full_forward() -> None:
    """Cached decoding (one query, keys from the cache) sees the same prefix as a full forward: the greedy
    step scores equal the teacher-forced logits."""
    for backbone in ("tiny-bart", "tiny-t5"):
        model, batch = tiny(backbone, "seq2seq"), inputs(backbone)
        batch.pop("decoder_input_ids")
        method_from_dict("m", {"compose": [{"form": "prefix", "site": "attn", "l": 3},
                                           {"form": "bottleneck", "site": "attn_heads", "r": 2}]}).apply(model)
        for m in model.modules():
            if hasattr(m, "up") and isinstance(m.up, nn.Parameter):
                nn.init.normal_(m.up)
        with torch.no_grad():
            gen = model.generate(**batch, max_new_tokens=4, do_sample=False, num_beams=1, output_scores=True,
                                 return_dict_in_generate=True)
            full = model(**batch, decoder_input_ids=gen.sequences[:, :-1]).logits
        for step, scores in enumerate(gen.scores):
            torch.testing.assert_close(scores, full[:, step], rtol=1e-4, atol=1e-4)
