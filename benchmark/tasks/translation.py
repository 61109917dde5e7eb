"""WMT16 English→Romanian with mBART-large-cc25 (He et al. 2022, Tables 3, 4, 6, 12 and Figure 5).

Hub `wmt/wmt16`, config `ro-en` (610,320 / 1,999 / 1,999; column `translation: {en, ro}`) or a local
folder of `<split>.jsonl` rows in that schema. Checkpoints are selected by validation loss on the
first 1,600 validation pairs (reference code); BLEU is reported on the whole test set twice:
`bleu` (detokenized sacreBLEU, the standard) and `bleu_tokenized` (the paper's: Romanian-normalised,
diacritics removed, Moses-tokenized) — only the latter is comparable with the paper's table.

mBART-cc25 format: source `X </s> en_XX`, target `Y </s> ro_RO`; the decoder starts from `ro_RO`
(mBART's shift rotates the code to the front) and no BOS is forced (that is mBART-50's format).
Sequences are built here from unadorned tokens plus `[eos, code]`, which is exactly what the mBART
tokenizer's template adds, so the tiny test backbone — whose borrowed BERT tokenizer has no language
codes — gets `en_XX`/`ro_RO` as added special tokens and runs the same code path end to end.
"""
from __future__ import annotations

from typing import Any

from benchmark.spec import TaskSettings
from benchmark.tasks.base import sentence
from benchmark.tasks.metrics import bleu, bleu_tokenized
from benchmark.tasks.seq2seq import Seq2SeqTask


class WMT16EnRo(Seq2SeqTask):
    """English→Romanian news translation."""

    name = "wmt16-en-ro"
    metric = "bleu"
    paper_metric = "bleu_tokenized"
    default_backbone = "mbart-large-cc25"
    hub_id = "wmt/wmt16"
    hub_config = "ro-en"
    columns = ("translation",)
    extra_metrics = ("bleu_tokenized",)
    generate_during_selection = False  # selection by validation loss: no beam search while training
    model_config = {"dropout": 0.1, "attention_dropout": 0.0}
    options = {**Seq2SeqTask.base_options, "source": "en", "target": "ro", "src_lang": "en_XX", "tgt_lang": "ro_RO",
               "max_source_length": 150, "max_target_length": 150,
               "num_beams": 5, "min_length": 1, "max_length": 200, "no_repeat_ngram_size": 0}
    # paper recipe: 16,384 tokens per update (4,096-token batches × accumulation 4), 50K steps
    recipe = {"learning_rate": 5e-5, "batch_size": 10, "max_tokens": 4096, "grad_accum": 4, "max_steps": 50_000,
              "lr_scheduler": "polynomial", "warmup_ratio": 0.0, "label_smoothing": 0.1, "weight_decay": 0.01,
              "max_grad_norm": 1.0, "adam_beta2": 0.98, "adam_epsilon": 1e-6, "eval_steps": 5000,
              "save_steps": 5000, "select_metric": "loss", "eval_batch_size": 10}

    smoke = {"backbone": "tiny-mbart", "options": {"num_beams": 2, "max_length": 12, "min_length": 2, "select_size": 3, "max_source_length": 48, "max_target_length": 16},
             "train": {"max_steps": 2, "eval_steps": 2, "batch_size": 4, "eval_batch_size": 8, "max_tokens": 64}}

    def fixture_row(self, split: str, i: int, rng: Any) -> dict[str, Any]:
        ro = "Această casă este frumoasă şi mare Ţara noastră are păduri și râuri în România".split()
        return {"translation": {"en": sentence(rng, 7), "ro": " ".join(rng.choice(ro) for _ in range(6)) + "."}}

    def pair(self, row: dict[str, Any], opts: dict[str, Any]) -> tuple[str, str]:
        return row["translation"][opts["source"]], row["translation"][opts["target"]]

    def score(self, predictions: list[str], references: list[str], opts: dict[str, Any]) -> dict[str, float]:
        return {"bleu": bleu(predictions, references), "bleu_tokenized": bleu_tokenized(predictions, references)}

    def tokenizer(self, settings: TaskSettings) -> Any:
        """The backbone's tokenizer with both language codes as single special tokens."""
        tok = super().tokenizer(settings)
        opts = settings.options
        codes = [opts["src_lang"], opts["tgt_lang"]]
        missing = [c for c in codes if tok.convert_tokens_to_ids(c) in (None, tok.unk_token_id)]
        if missing:  # a borrowed tokenizer (tiny backbones): register the codes as mBART's tokenizer has them
            tok.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
        return tok

    def encode(self, tok: Any, sources: list[str], targets: list[str], opts: dict[str, Any]) -> dict[str, list]:
        """`tokens </s> lang_code` on both sides, truncated so the whole sequence fits the paper's 150."""
        def side(texts: list[str], code: str, limit: int) -> list[list[int]]:
            ids = tok(texts, add_special_tokens=False, truncation=True, max_length=limit - 2)["input_ids"]
            suffix = [self._eos(tok), tok.convert_tokens_to_ids(code)]
            return [row + suffix for row in ids]

        return {"input_ids": side(sources, opts["src_lang"], opts["max_source_length"]),
                "labels": side(targets, opts["tgt_lang"], opts["max_target_length"])}

    def special_tokens(self, tok: Any, family: str, opts: dict[str, Any]) -> dict[str, int | None]:
        ids = super().special_tokens(tok, family, opts)
        start = tok.convert_tokens_to_ids(opts["tgt_lang"])
        return {**ids, "decoder_start_token_id": start, "forced_bos_token_id": None}

    @staticmethod
    def _eos(tok: Any) -> int:
        return tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        opts = settings.options
        return {"selection": f"lowest loss on the first {opts['select_size'] or 'all'} {opts['select_split']} "
                             f"pairs, every eval_steps",
                "report": f"{opts['report_split']} ({opts['report_size'] or 'all'} pairs), beam search",
                "bleu": "detokenized sacreBLEU (13a): the standard, not comparable with the paper",
                "bleu_tokenized": "the paper's BLEU: Moses punctuation normalisation, Romanian s/t-comma "
                                  "normalisation, diacritics removed, Moses tokenization, sacrebleu -tok none -s none",
                "comparable_to_paper": {"BLEU": "bleu_tokenized"},
                "batching": "token-count batches (max_tokens × grad_accum tokens per update)"}
