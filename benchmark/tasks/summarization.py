"""XSum abstractive summarization with BART-large (He et al. 2022, Tables 3, 5, 6, 12 and Figure 5).

Hub `EdinburghNLP/xsum` (204,045 / 11,332 / 11,334; columns `document`, `summary`, `id`) or a local
folder of `<split>.jsonl` in those columns. Checkpoints are selected by ROUGE-2 on the first 1,600
validation pairs (reference code), and ROUGE-1/2/L/Lsum are reported on the whole test set.
"""
from __future__ import annotations

from typing import Any

from benchmark.spec import TaskSettings
from benchmark.tasks.base import sentence
from benchmark.tasks.metrics import rouge
from benchmark.tasks.seq2seq import Seq2SeqTask


class XSum(Seq2SeqTask):
    """One-sentence summaries of BBC articles."""

    name = "xsum"
    metric = "rouge2"
    default_backbone = "bart-large"
    hub_id = "EdinburghNLP/xsum"
    columns = ("document", "summary")
    extra_metrics = ("rouge1", "rougeL", "rougeLsum")
    options = {**Seq2SeqTask.base_options, "max_source_length": 512, "max_target_length": 128,
               # beam search of the paper / reference scripts
               "num_beams": 6, "min_length": 10, "max_length": 60, "no_repeat_ngram_size": 3}
    # paper recipe: 64 sentences per update (16 × accumulation 4), 100K steps, polynomial decay without warmup
    recipe = {"learning_rate": 5e-5, "batch_size": 16, "grad_accum": 4, "max_steps": 100_000,
              "lr_scheduler": "polynomial", "warmup_ratio": 0.0, "label_smoothing": 0.1, "weight_decay": 0.01,
              "max_grad_norm": 0.1, "eval_steps": 3000, "save_steps": 3000, "select_metric": "rouge2",
              "eval_batch_size": 16}

    smoke = {"backbone": "tiny-bart", "options": {"num_beams": 2, "max_length": 12, "min_length": 2, "select_size": 3, "max_source_length": 48, "max_target_length": 16},
             "train": {"max_steps": 2, "eval_steps": 2, "batch_size": 4, "eval_batch_size": 8}}

    def fixture_row(self, split: str, i: int, rng: Any) -> dict[str, Any]:
        return {"document": " ".join(sentence(rng, 8) for _ in range(3)), "summary": sentence(rng, 6),
                "id": f"{split}-{i}"}

    def pair(self, row: dict[str, Any], opts: dict[str, Any]) -> tuple[str, str]:
        return row["document"], row["summary"]

    def score(self, predictions: list[str], references: list[str], opts: dict[str, Any]) -> dict[str, float]:
        return rouge(predictions, references)

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        opts = settings.options
        return {"selection": f"best ROUGE-2 on the first {opts['select_size'] or 'all'} {opts['select_split']} "
                             f"pairs, every eval_steps",
                "report": f"{opts['report_split']} ({opts['report_size'] or 'all'} pairs), beam search",
                "rouge": "rouge-score F1 with Porter stemming, mean over examples; rougeLsum on regex-split "
                         "sentences",
                "comparable_to_paper": {"R-1": "rouge1", "R-2": "rouge2",
                                        "R-L": "rougeLsum (HF's summarization script, which the reference code "
                                               "runs, splits sentences before scoring; rougeL is kept too)"}}
