"""Stand-in backbones for a rehearsal: tiny random models that keep every limit of the real one that can break a run.

A stand-in is the real backbone's architecture config (the shipped `configs/<name>.json`, or a config-only
backbone's own settings) with only width, depth, heads and feed-forward size shrunk. Everything a run can trip over
stays: the position table (GPT-2 1024, BERT 512, RoBERTa 514, BART/mBART 1024, Longformer 4098 and its attention
window), T5's relative buckets, the vocabulary size, the encoder/decoder structure and the special-token ids. It is
written as a local folder in the Hub layout (config.json, random model.safetensors and, for the families whose
tasks read text, a tokenizer of the real class) so a rehearsal run loads it through `backbone_path`, by the same
`from_pretrained` path a real run takes. The tokenizer is trained offline on fixture text and padded with unused
pieces to the real vocabulary, so its special tokens and mBART's language codes have the real ids.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.backbones.registry import CONFIG_DIR, get_backbone
from benchmark.errors import ConfigError

VERSION = "1"  # bump when a stand-in's recipe changes: its folder (resources/rehearsal/v<VERSION>/) changes too
WIDTH, FFN, DEPTH, HEADS, HEAD_DIM = 16, 32, 2, 2, 8
SHRINK: dict[str, int] = {
    **dict.fromkeys(("hidden_size", "n_embd", "d_model"), WIDTH),
    **dict.fromkeys(("intermediate_size", "encoder_ffn_dim", "decoder_ffn_dim", "d_ff"), FFN),
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers", "encoder_layers", "decoder_layers",
                     "num_decoder_layers"), DEPTH),
    **dict.fromkeys(("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads",
                     "decoder_attention_heads"), HEADS),
    "d_kv": HEAD_DIM,
}
# the families whose tasks tokenise text (GLUE on RoBERTa, XSum on BART, en-ro on mBART) get a tokenizer
TOKENIZERS = {"roberta": "RobertaTokenizer", "bart": "BartTokenizer", "mbart": "MBartTokenizer"}
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3 in RoBERTa, BART and mBART alike


def real_config(name: str) -> dict[str, Any]:
    """The real backbone's architecture settings: its shipped config, or a config-only backbone's own."""
    spec = get_backbone(name)
    shipped = CONFIG_DIR / f"{name}.json"
    if spec.tiny is not None:
        return {"model_type": spec.family, **spec.tiny}
    if not shipped.exists() and spec.source.startswith("package:"):  # a wheel's local folder (offline)
        shipped = Path(spec.location()) / "config.json"
    if not shipped.exists():
        raise ConfigError(f"backbone {name!r}: no shipped config ({shipped}) to derive a rehearsal stand-in from; "
                          f"add its Hub config.json there")
    return {k: v for k, v in json.loads(shipped.read_text()).items() if not k.startswith("_")}


def standin_config(name: str) -> dict[str, Any]:
    """The real config with only width, depth, heads and feed-forward size shrunk."""
    cfg = {k: (SHRINK[k] if k in SHRINK and isinstance(v, int) else v) for k, v in real_config(name).items()}
    if cfg.get("n_inner") is not None:  # GPT-2's ffn (None means 4 × width)
        cfg["n_inner"] = FFN
    if isinstance(cfg.get("attention_window"), list):  # Longformer: one window per layer
        cfg["attention_window"] = cfg["attention_window"][:1] * cfg["num_hidden_layers"]
    return cfg


def write_standin(name: str, out: Path, seed: int = 0) -> Path:
    """Write the stand-in of backbone `name` into `out` (config, random weights, tokenizer where tasks read text)."""
    import torch

    from benchmark.backbones.registry import _transformers

    transformers = _transformers()
    raw = standin_config(name)
    config = transformers.AutoConfig.for_model(**raw)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    family = raw["model_type"]
    if family in TOKENIZERS:
        tokenizer(family, config.vocab_size).save_pretrained(out)
    (out / "STANDIN.json").write_text(json.dumps(
        {"standin_of": name, "version": VERSION, "seed": seed, "note": "random weights: a rehearsal stand-in, "
         "never a pretrained model", "shrunk": sorted(k for k in raw if k in SHRINK or k == "n_inner")}, indent=1))
    return out


def corpus() -> list[str]:
    """Text the tokenizers learn from: the fixtures' own words (English and Romanian)."""
    from benchmark.tasks.base import WORDS

    ro = "Această casă este frumoasă şi mare Ţara noastră are păduri și râuri în România".split()
    words = WORDS + ro
    return [" ".join(words[i:] + words[:i]) for i in range(len(words))] + [w.capitalize() + "." for w in words]


def tokenizer(family: str, vocab_size: int) -> Any:
    """A tokenizer of the real class with the real special-token ids, filling the real vocabulary size."""
    import transformers

    cls = getattr(transformers, TOKENIZERS[family])
    return _unigram(cls, vocab_size) if family == "mbart" else _bpe(cls, vocab_size)


def _bpe(cls: type, vocab_size: int) -> Any:
    """Byte-level BPE (RoBERTa, BART): <s> <pad> </s> <unk> = 0-3, learnt merges, unused pieces, <mask> last."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    for i in range(len(vocab), vocab_size - 1):
        vocab[f"<unused{i}>"] = i
    vocab["<mask>"] = vocab_size - 1
    return cls(vocab=vocab, merges=merges)


def _unigram(cls: type, vocab_size: int) -> Any:
    """Unigram (mBART): <s> <pad> </s> <unk> = 0-3, learnt pieces, unused pieces, then the 25 language codes and
    <mask> at the real ids (en_XX 250004, ro_RO 250020, <mask> 250026)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.mbart.tokenization_mbart import FAIRSEQ_LANGUAGE_CODES

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(corpus(), trainers.UnigramTrainer(
        vocab_size=400, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False))
    pieces = [(p, s) for p, s in json.loads(tok.to_str())["model"]["vocab"]]
    tail = FAIRSEQ_LANGUAGE_CODES + ["<mask>"]
    pieces += [(f"<unused{i}>", -100.0) for i in range(len(pieces), vocab_size - len(tail))]
    pieces += [(t, 0.0) for t in tail]
    return cls(vocab=pieces)
