"""He et al. task loaders on fixtures in the Hub schemas: splits, subsets, special tokens, batching."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import he_fixtures
from benchmark import registry
from benchmark.config import load_config
from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.tasks.generation import TokenBatchSampler


def _settings(task: str, backbone: str, data_dir: Path, **options: Any) -> TaskSettings:
    cfg = load_config({"tasks": {task: {"backbone": backbone, "data_dir": str(data_dir), "options": options}},
                       "grid": [{"tasks": [task], "methods": ["full"]}]})
    return cfg.task_spec(task)


def _prepared(task: str, settings: TaskSettings, tmp_path: Path) -> Path:
    out = tmp_path / "prepared" / task
    registry.get_task(task).prepare(settings, out)
    return out


def test_sst2_full_dev_by_default_and_reference_subset_as_option(tmp_path: Path) -> None:
    src = he_fixtures.glue(tmp_path / "sst2", "sst2", n=12)
    task = registry.get_task("sst2")
    settings = _settings("sst2", "tiny-roberta", src)
    data = task.data(settings, 1, _prepared("sst2", settings, tmp_path))
    assert (len(data.train), len(data.eval)) == (12, 12)
    assert task.protocol(settings)["eval_examples"] == "the whole dev set (paper)"
    ref = _settings("sst2", "tiny-roberta", src, eval_examples=5, head="frozen")
    assert len(task.data(ref, 1, _prepared("sst2", ref, tmp_path)).eval) == 5
    assert "issue #26" in task.protocol(ref)["eval_examples"] and "issue #15" in task.protocol(ref)["head"]
    assert set(data.train[0]) >= {"input_ids", "attention_mask", "labels"}


def test_mnli_keeps_matched_and_mismatched(tmp_path: Path) -> None:
    src = he_fixtures.glue(tmp_path / "mnli", "mnli", n=9)
    task = registry.get_task("mnli")
    settings = _settings("mnli", "tiny-roberta", src)
    data = task.data(settings, 1, _prepared("mnli", settings, tmp_path))
    assert data.eval_name == "validation_matched" and len(data.eval) == 9
    assert len(data.extras["validation_mismatched"]) == 9
    assert sorted({row["labels"] for row in data.train}) == [0, 1, 2]
    # premise and hypothesis are one pair: two [SEP]s in the borrowed BERT tokenizer's encoding
    assert data.train[0]["input_ids"].count(102) == 2


def test_glue_rejects_bad_head_and_missing_split(tmp_path: Path) -> None:
    src = he_fixtures.glue(tmp_path / "mnli", "mnli", n=3)
    with pytest.raises(ConfigError, match="options.head: 'frozn' is not one of"):
        _settings("mnli", "tiny-roberta", src, head="frozn")
    (src / "validation_mismatched.jsonl").unlink()
    with pytest.raises(ConfigError, match="lacks validation_mismatched.jsonl"):
        _settings("mnli", "tiny-roberta", src)


def test_xsum_loader_selection_subset_report_split_and_decoder_inputs(tmp_path: Path) -> None:
    src = he_fixtures.xsum(tmp_path / "xsum")
    task = registry.get_task("xsum")
    settings = _settings("xsum", "tiny-bart", src, select_size=4)
    data = task.data(settings, 1, _prepared("xsum", settings, tmp_path))
    assert (len(data.train), len(data.eval), len(data.extras["report"])) == (16, 4, 5)
    assert data.eval_name == "test" and data.extras["references"][0].endswith(".")
    batch = data.collate([data.train[i] for i in range(3)])
    sep = data.extras["tokenizer"].sep_token_id
    # BART: decoder inputs are the labels shifted right behind the decoder start token (= eos)
    assert (batch["decoder_input_ids"][:, 0] == sep).all()
    labels = batch["labels"].masked_fill(batch["labels"] == -100, 0)
    assert torch.equal(batch["decoder_input_ids"][:, 1:], labels[:, :-1])
    assert batch["attention_mask"].sum() == sum(len(data.train[i]["input_ids"]) for i in range(3))


def test_en_ro_uses_mbart_language_codes(tmp_path: Path) -> None:
    src = he_fixtures.wmt16_en_ro(tmp_path / "enro")
    task = registry.get_task("wmt16-en-ro")
    settings = _settings("wmt16-en-ro", "tiny-mbart", src)
    data = task.data(settings, 1, _prepared("wmt16-en-ro", settings, tmp_path))
    tok = data.extras["tokenizer"]
    en, ro = tok.convert_tokens_to_ids(["en_XX", "ro_RO"])
    assert en != ro and tok.unk_token_id not in (en, ro)
    row = data.train[0]
    assert row["input_ids"][-2:] == [tok.sep_token_id, en] and row["labels"][-2:] == [tok.sep_token_id, ro]
    batch = data.collate([data.train[i] for i in range(4)])
    assert (batch["decoder_input_ids"][:, 0] == ro).all()  # mBART rotates the target code to the front
    model = task.build_model(settings, "pretrained", 1)
    assert model.config.vocab_size == len(tok) and model.generation_config.decoder_start_token_id == ro
    assert model.generation_config.forced_bos_token_id is None and model.generation_config.num_beams == 5
    assert task.protocol(settings)["comparable_to_paper"] == {"BLEU": "bleu_tokenized"}


def test_seq2seq_tasks_check_their_data_dir(tmp_path: Path) -> None:
    src = he_fixtures.xsum(tmp_path / "xsum")
    (src / "test.jsonl").unlink()
    with pytest.raises(ConfigError, match=r"lacks test.jsonl .*EdinburghNLP/xsum.*document, summary"):
        _settings("xsum", "tiny-bart", src)


def test_token_batches_respect_the_budget_and_cover_every_example() -> None:
    lengths = [3, 17, 8, 8, 30, 5, 12, 9, 2, 25]
    sampler = TokenBatchSampler(lengths, max_tokens=40, seed=3)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(len(b) * max(lengths[i] for i in b) <= 40 for b in batches)
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # reshuffled per epoch
    with pytest.raises(ConfigError, match="smaller than the longest example"):
        TokenBatchSampler([50], max_tokens=40, seed=0)


@pytest.mark.parametrize("head, trains", [("trained", True), ("frozen", False)])
def test_glue_head_includes_berts_pooler(tmp_path: Path, head: str, trains: bool) -> None:
    """RoBERTa's head is dense + tanh + projection; on BERT that dense + tanh is the pooler, so it trains with
    the classifier (and freezes with it under the reference code's `head: frozen`)."""
    src = he_fixtures.glue(tmp_path / "sst2", "sst2", n=3)
    task = registry.get_task("sst2")
    settings = _settings("sst2", "tiny-bert", src, head=head)
    model = task.build_model(settings, "pretrained", 1)
    method = registry.get_method("lora")
    method.apply(model)
    task.after_apply(model, settings, method)
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert grads["bert.pooler.dense.weight"] is trains and grads["classifier.weight"] is trains
    assert not grads["bert.encoder.layer.0.attention.self.query.weight"]


def test_jobs_that_start_together_tokenise_a_dataset_once(tmp_path: Path) -> None:
    """Two training processes read one prepared SST-2 folder at once (as a grid's first wave of jobs does): under
    the data lock the first tokenises both splits and the second loads them from `datasets`' cache (its log says so
    twice), whatever the seed, because the full training split is tokenised before any seeded sampling."""
    import json
    import os
    import subprocess
    import sys

    from benchmark.rundir import data_lock

    settings = _settings("sst2", "minilm-l6", he_fixtures.glue(tmp_path / "src", "sst2", n=400), max_length=32)
    data = _prepared("sst2", settings, tmp_path)
    code = ("import sys, datasets; from pathlib import Path; from benchmark import registry; "
            "from benchmark.rundir import data_lock; datasets.logging.set_verbosity_info(); "
            "from benchmark.spec import TaskSettings; import json; "
            f"s = TaskSettings.from_json(json.loads({json.dumps(settings.to_json())!r}))\n"
            "with data_lock(Path(sys.argv[2])): registry.get_task('sst2').data(s, int(sys.argv[1]), Path(sys.argv[2]))")
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    with data_lock(data):  # both start, then wait here: without the lock they would tokenise side by side
        jobs = [subprocess.Popen([sys.executable, "-c", code, str(seed), str(data)], env=env, stderr=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, text=True) for seed in (1, 2)]
    logs = [job.communicate(timeout=300)[1] for job in jobs]
    assert all(job.returncode == 0 for job in jobs), logs
    assert sorted(log.count("Loading cached processed dataset") for log in logs) == [0, 2], logs
