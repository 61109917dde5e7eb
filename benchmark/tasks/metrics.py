"""Text metrics of He et al. (2022), computed locally (no `evaluate.load`, no NLTK data, no downloads).

- ROUGE: Google's `rouge-score` with Porter stemming; ROUGE-Lsum needs one sentence per line, which
  the reference code got from NLTK's punkt — here a regex splitter does it, so nothing is fetched.
  Scores are the mean per-example F1 × 100 (deterministic; `evaluate`'s bootstrap "mid" is a
  resampled estimate of the same mean).
- BLEU twice: detokenized sacreBLEU (13a, the community standard) and the paper's BLEU — both sides
  run through Moses punctuation normalisation, Romanian s/t-comma normalisation, diacritic removal
  and the Moses tokenizer, then `sacrebleu -tok none -s none`. Only the second is comparable with
  the numbers the paper (and mBART) report; removing diacritics makes it the higher of the two.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import numpy as np

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# a sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace and an
# upper-case letter, digit or opening quote; common abbreviations do not end sentences
_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "No", "vs", "etc", r"e\.g", r"i\.e", "Prof", "Gen")
_ABBREV = "".join(rf"(?<!\b{a}\.)" for a in _ABBREVIATIONS)
_BOUNDARY = re.compile(r"(?<=[.!?])" + _ABBREV + r"([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")

# Romanian: legacy cedilla forms → comma-below forms (wmt16-scripts normalise-romanian), then diacritics off
_RO_NORMALISE = str.maketrans({"\u015e": "\u0218", "\u015f": "\u0219", "\u0162": "\u021a", "\u0163": "\u021b"})
_RO_STRIP = str.maketrans({"\u0218": "S", "\u0219": "s", "\u021a": "T", "\u021b": "t", "\u0102": "A",
                           "\u0103": "a", "\u00c2": "A", "\u00e2": "a", "\u00ce": "I", "\u00ee": "i"})


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Percent of argmax predictions equal to the labels."""
    return float((np.asarray(predictions).argmax(-1) == np.asarray(labels)).mean() * 100)


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences with a regex (a stand-in for NLTK punkt, which needs downloaded data)."""
    text = " ".join(text.split())
    if not text:
        return []
    parts = _BOUNDARY.split(text)
    # re.split keeps the captured closing punctuation as separate items: glue it back onto its sentence
    sentences = [parts[0]]
    for i in range(1, len(parts), 2):
        sentences[-1] += parts[i]
        sentences.append(parts[i + 1])
    return [s.strip() for s in sentences if s.strip()]


@lru_cache(maxsize=1)
def _rouge_scorer():  # noqa: ANN202 - rouge_score has no type hints
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F1 × 100; for Lsum both sides are split into lines of one sentence each."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = _rouge_scorer()
    totals = dict.fromkeys(ROUGE_KEYS, 0.0)
    for pred, ref in zip(predictions, references):
        scores = scorer.score("\n".join(split_sentences(ref)), "\n".join(split_sentences(pred)))
        for k in ROUGE_KEYS:
            totals[k] += scores[k].fmeasure
    n = max(len(predictions), 1)
    return {k: 100 * v / n for k, v in totals.items()}


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Detokenized corpus sacreBLEU (13a tokenization, default smoothing): the standard, comparable across papers."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


@lru_cache(maxsize=1)
def _moses() -> tuple:
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    return (MosesPunctNormalizer(lang="ro", pre_replace_unicode_punct=True, post_remove_control_chars=True),
            MosesTokenizer(lang="ro"))


def romanian_tokenized(text: str) -> str:
    """The paper's (and mBART's) Romanian post-processing: Moses punctuation normalisation, s/t-comma
    normalisation, diacritic removal, Moses tokenization without escaping."""
    normalizer, tokenizer = _moses()
    text = normalizer.normalize(text).translate(_RO_NORMALISE).translate(_RO_STRIP)
    return tokenizer.tokenize(text, escape=False, return_str=True)


def bleu_tokenized(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """The paper's en-ro BLEU: `romanian_tokenized` on both sides, then sacreBLEU with no tokenization and
    no smoothing (`sacrebleu -tok none -s none`)."""
    import sacrebleu

    hyps = [romanian_tokenized(h) for h in hypotheses]
    refs = [romanian_tokenized(r) for r in references]
    return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none", force=True).score)
