"""He et al. tasks end to end on tiny random backbones: train a few steps, select a checkpoint, generate,
score, and write a full record (MAM on BART and mBART; LoRA with the reference-code options on GLUE)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


import he_fixtures
from benchmark import registry
from benchmark.config import Run, load_config
from benchmark.record import read_record
from benchmark.train import train_run

FAST = {"max_steps": 4, "eval_steps": 2, "batch_size": 4, "grad_accum": 1, "eval_batch_size": 8}
GENERATE = {"num_beams": 2, "max_length": 12, "min_length": 2, "select_size": 3}


def _run(tmp_path: Path, task: str, method: str, backbone: str, src: Path, budget: str = "default",
         options: dict[str, Any] | None = None, train: dict[str, Any] | None = None) -> tuple[dict, Path]:
    cfg = load_config({"tasks": {task: {"backbone": backbone, "data_dir": str(src), "options": options or {},
                                        "train": train or {}}},
                       "grid": [{"tasks": [task], "methods": [method], "budgets": [budget]}]})
    spec = cfg.spec(Run(task, method, budget, 1))
    data = tmp_path / "data" / task
    registry.get_task(spec.task.task).prepare(spec.task, data)
    out = tmp_path / "runs" / task / method / budget / "1"
    record = train_run(spec, out, data_path=data)
    assert read_record(out / "record.json")["metrics"] == json.loads(json.dumps(record["metrics"]))
    return record, out


def test_xsum_bart_mam_selects_by_rouge2_and_reports_test_rouge(tmp_path: Path) -> None:
    src = he_fixtures.xsum(tmp_path / "src")
    record, out = _run(tmp_path, "xsum", "mam", "tiny-bart", src, budget="l4-r8", options=GENERATE,
                       train={**FAST, "label_smoothing": 0.1})
    assert record["status"] == "ok" and record["primary_metric"] == "rouge2"
    assert set(record["metrics"]) >= {"rouge1", "rouge2", "rougeL", "rougeLsum", "loss"}
    assert [c["step"] for c in record["curve"]] == [2, 4] and all("eval_rouge2" in c for c in record["curve"])
    assert record["method"]["sizes"] == {"l": 4, "r": 8}
    assert any("prefix" in n for n in record["params"]["trainable_tensors"])
    assert record["protocol"]["comparable_to_paper"]["R-2"] == "rouge2"
    generations = [json.loads(line) for line in (out / "test_generations.jsonl").read_text().splitlines()]
    assert len(generations) == 5 and all(g["prediction"] and g["reference"] for g in generations)


def test_en_ro_mbart_mam_token_batches_and_both_bleus(tmp_path: Path) -> None:
    src = he_fixtures.wmt16_en_ro(tmp_path / "src")
    record, out = _run(tmp_path, "wmt16-en-ro", "mam", "tiny-mbart", src, budget="l4-r8", options=GENERATE,
                       train={**FAST, "max_tokens": 48, "grad_accum": 2})
    assert record["status"] == "ok" and record["paper_metric"] == "bleu_tokenized"
    assert set(record["metrics"]) >= {"bleu", "bleu_tokenized", "loss"}
    assert record["config"]["train"]["max_tokens"] == 48
    # selection by validation loss: no generation while training
    assert all("eval_loss" in c and "eval_bleu" not in c for c in record["curve"])
    assert len((out / "test_generations.jsonl").read_text().splitlines()) == 5


def test_glue_reference_code_options_freeze_the_head_and_subset_dev(tmp_path: Path) -> None:
    src = he_fixtures.glue(tmp_path / "src", "mnli", n=12)
    record, _ = _run(tmp_path, "mnli", "lora", "tiny-roberta", src,
                     options={"eval_examples": 5, "head": "frozen", "max_length": 32},
                     train={"num_epochs": 2, "batch_size": 6})
    assert record["status"] == "ok"
    assert set(record["metrics"]) >= {"accuracy", "accuracy_mm", "loss"}
    assert not any(n.startswith("classifier") for n in record["params"]["trainable_tensors"])
    assert [c["epoch"] for c in record["curve"]] == [1.0, 2.0]  # evaluated (and selectable) every epoch
    assert "first 5" in record["protocol"]["eval_examples"] and "frozen" in record["protocol"]["head"]
    # the selected checkpoint's accuracy is the best epoch's
    assert record["metrics"]["accuracy"] == max(c["eval_accuracy"] for c in record["curve"])
