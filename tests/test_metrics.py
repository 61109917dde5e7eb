"""He et al.'s metrics equal the reference libraries' (rouge-score, sacreBLEU) on known pairs."""
from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from benchmark.tasks import metrics

SUMMARIES = [("The minister said the plan would go ahead. Critics were not convinced.",
              "The minister has said the plan will go ahead despite criticism. Opponents remain unconvinced."),
             ("Police found the missing boy in a park.", "A missing boy has been found safe by police in a park."),
             ("Running runners ran.", "The runner runs.")]


def test_accuracy() -> None:
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert metrics.accuracy(logits, np.array([1, 0, 0, 0])) == 75.0


@pytest.mark.parametrize("text, expected", [
    ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
    ('Mr. Smith met Dr. Jones. He said "hello." Then 3 people left.',
     ["Mr. Smith met Dr. Jones.", 'He said "hello."', "Then 3 people left."]),
    ("It costs 3.5 dollars, e.g. cheap. fine", ["It costs 3.5 dollars, e.g. cheap. fine"]),
    ("  ", []),
])
def test_sentence_splitter(text: str, expected: list[str]) -> None:
    assert metrics.split_sentences(text) == expected


def test_rouge_equals_rouge_score_with_stemming() -> None:
    preds, refs = zip(*SUMMARIES)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    expected = {k: 0.0 for k in metrics.ROUGE_KEYS}
    for p, r in SUMMARIES:
        plain = scorer.score(r, p)
        lsum = scorer.score("\n".join(metrics.split_sentences(r)), "\n".join(metrics.split_sentences(p)))
        for k in ("rouge1", "rouge2", "rougeL"):
            expected[k] += plain[k].fmeasure * 100 / len(SUMMARIES)
        expected["rougeLsum"] += lsum["rougeLsum"].fmeasure * 100 / len(SUMMARIES)
    got = metrics.rouge(list(preds), list(refs))
    assert got == pytest.approx(expected)
    # stemming: "runs"/"ran"/"running" share stems, so the stemmed ROUGE-1 of the last pair is above 0
    assert metrics.rouge([SUMMARIES[2][0]], [SUMMARIES[2][1]])["rouge1"] > 0
    # sentences in swapped order: Lsum (union of per-sentence LCS) sees both, L only one
    swapped = metrics.rouge(["Critics were not convinced. The plan goes ahead."],
                            ["The plan goes ahead. Critics were not convinced."])
    assert swapped["rougeLsum"] == pytest.approx(100.0) and swapped["rougeL"] < 70


def test_rouge_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        metrics.rouge(["a", "b"], ["a"])


HYPS = ["Aceasta casa este frumoasa si mare .", "Tara noastra are paduri si rauri ."]
REFS = ["Această casă este frumoasă şi mare.", "Ţara noastră are păduri și râuri."]


def test_bleu_equals_sacrebleu() -> None:
    assert metrics.bleu(HYPS, REFS) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)


def test_romanian_normalisation() -> None:
    # cedilla and comma-below forms both lose their diacritics; Moses splits the final period off
    assert metrics.romanian_tokenized("Ţara şi Țara și „casa” mare.") == 'Tara si Tara si " casa " mare .'
    assert metrics.romanian_tokenized("În râuri, ăsta") == "In rauri , asta"


def test_tokenized_bleu_is_the_papers_pipeline_and_higher_with_diacritics() -> None:
    tokenized = metrics.bleu_tokenized(HYPS, REFS)
    expected = sacrebleu.corpus_bleu([metrics.romanian_tokenized(h) for h in HYPS],
                                     [[metrics.romanian_tokenized(r) for r in REFS]],
                                     tokenize="none", smooth_method="none", force=True).score
    assert tokenized == pytest.approx(expected)
    # the hypotheses lack diacritics: detokenized BLEU punishes that, the paper's BLEU does not
    assert tokenized == pytest.approx(100.0)
    assert metrics.bleu(HYPS, REFS) < 50 < tokenized
