"""The rehearsal: the paper grid's every job in miniature — stand-in backbones that keep the real limits, fixture data
from the data rule, a few steps — under its own results root, labelled so no number is taken for a result."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmark.backbones.standin import SHRINK, real_config, standin_config, write_standin
from benchmark.config import load_config
from benchmark.rehearsal import standin_root
from conftest import REPO, snakemake
from leaderboard.comparable import REHEARSAL, display_name, setup_differences

PAPER = REPO / "config" / "config.yaml"
REAL = ["gpt2", "gpt2-medium", "gpt2-large", "bert-base", "roberta-base", "bart-large", "mbart-large-cc25",
        "t5-base", "longformer-base", "vit-base", "lstm", "gpt2-3layer"]
LIMITS = ("vocab_size", "n_positions", "max_position_embeddings", "relative_attention_num_buckets",
          "relative_attention_max_distance", "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id",
          "forced_bos_token_id", "sep_token_id", "is_encoder_decoder", "image_size", "patch_size", "num_channels",
          "type_vocab_size", "model_type")


def paper(**extra: object) -> dict:
    return {**yaml.safe_load(PAPER.read_text()), **extra}


@pytest.mark.parametrize("name", REAL)
def test_a_standin_keeps_every_limit_and_shrinks_only_size(name: str) -> None:
    real, small = real_config(name), standin_config(name)
    assert set(small) == set(real)
    for key in LIMITS:
        assert small.get(key) == real.get(key), key
    shrunk = {k for k in real if small[k] != real[k]}
    assert shrunk and shrunk <= set(SHRINK) | {"n_inner", "attention_window"}
    if name == "longformer-base":
        assert small["attention_window"] == [512] * small["num_hidden_layers"]


def test_the_standin_folders_load_as_the_real_classes_with_the_real_ids(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    mbart = write_standin("mbart-large-cc25", tmp_path / "mbart")
    tok = AutoTokenizer.from_pretrained(mbart, src_lang="en_XX", tgt_lang="ro_RO")
    assert type(tok).__name__ == "MBartTokenizer" and len(tok) == 250027
    assert tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "en_XX", "ro_RO", "<mask>"]) == \
        [0, 1, 2, 3, 250004, 250020, 250026]
    enc = tok("The minister said police found a new report.", text_target="Această casă este frumoasă.")
    assert enc["input_ids"][-2:] == [2, 250004] and enc["labels"][-2:] == [2, 250020]
    assert 3 not in enc["input_ids"][:-2]  # the fixture's words are in the vocabulary, not <unk>
    model = AutoModelForSeq2SeqLM.from_pretrained(mbart)
    assert model.config.d_model == 16 and model.config.max_position_embeddings == 1024
    assert model.get_input_embeddings().weight.shape[0] == 250027

    roberta = write_standin("roberta-base", tmp_path / "roberta")
    tok = AutoTokenizer.from_pretrained(roberta)
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.mask_token_id, len(tok)) == (0, 1, 2, 50264, 50265)
    ids = tok("Această casă: the minister's report")["input_ids"]
    assert max(ids) < 50265 and ids[0] == 0 and ids[-1] == 2
    assert AutoConfig.from_pretrained(roberta).max_position_embeddings == 514
    assert json.loads((roberta / "STANDIN.json").read_text())["standin_of"] == "roberta-base"


def test_the_rehearsal_plans_every_run_of_the_grid_under_its_own_root() -> None:
    real, rehearsal = load_config(paper(), PAPER), load_config(paper(rehearsal=True), PAPER)
    assert rehearsal.raw["results"] == "results/config-rehearsal"
    assert [s.key for s in real.specs.values()] == [s.key for s in rehearsal.specs.values()]
    assert len(rehearsal.specs) == len(real.specs) > 500
    root = standin_root("resources")
    for r, s in zip(real.specs.values(), rehearsal.specs.values()):
        assert s.task.backbone == r.task.backbone and s.task.options.get("max_tokens") == r.task.options.get("max_tokens")
        assert s.task.rehearsal == root and s.task.backbone_path == f"{root}/{s.task.backbone}"
        assert s.train["max_steps"] <= 4 and s.digest != r.digest and s.variant != r.variant
        assert s.task.data_digest != r.task.data_digest  # fixture data never lands in the real data's folder
    # real runs keep their identities: the rehearsal key is absent from a real spec's identity
    assert "rehearsal" not in next(iter(real.specs.values())).task.identity()


def test_rehearsal_sample_needs_rehearsal_and_covers_every_family() -> None:
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="rehearsal_sample"):
        load_config(paper(rehearsal_sample=True), PAPER)
    full = load_config(paper(rehearsal=True), PAPER)
    sample = load_config(paper(rehearsal=True, rehearsal_sample=True), PAPER)
    assert len(sample.runs) < 40
    assert {full.task_family(r.task) for r in full.runs} == {sample.task_family(r.task) for r in sample.runs}
    assert {full.method_family(r.method) for r in full.runs} == {sample.method_family(r.method) for r in sample.runs}
    assert {"fpt-bit", "lstm", "vit-init", "full-scratch"} <= {r.method for r in sample.runs}


def test_a_rehearsal_record_is_labelled_never_compared() -> None:
    config = {"task": {"name": "sst2", "task": "sst2", "options": {}, "rehearsal": "resources/rehearsal/v1/backbones"},
              "train": {"num_epochs": 10}}
    assert setup_differences([config], "roberta-base", "roberta-base")[0] == REHEARSAL
    assert display_name("sst2", config) == "sst2 (rehearsal)"
    real = {**config, "task": {**config["task"], "rehearsal": None}}
    assert setup_differences([real], "roberta-base", "roberta-base") == []


def test_snakemake_plans_standins_data_and_bit_pretraining_for_the_rehearsal(tmp_path: Path) -> None:
    out = subprocess.run([snakemake(), "-n", "--cores", "2", "--nolock", "--config", "rehearsal=true",
                          f"results={tmp_path}/results", f"resources={tmp_path}/resources"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    counts = {line.split()[0]: int(line.split()[1]) for line in text.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    planned = load_config(paper(), PAPER)
    assert counts["train"] == len(planned.runs) and counts["pretrain_bit"] == 1
    assert counts["data"] == len({(s.task.task, s.task.data_digest) for s in planned.specs.values()
                                  if s.task.task in {"sst2", "mnli", "xsum", "wmt16-en-ro", "mnist", "cifar10",
                                                     "cifar10-lra", "remote-homology"}})
    assert counts["standin"] == 12  # every backbone of the grid and every swapped-in baseline
    assert f"{tmp_path}/results-rehearsal/leaderboard" in text


@pytest.mark.slow
def test_a_sampled_rehearsal_runs_end_to_end_and_fills_its_cells(tmp_path: Path) -> None:
    """One run per new task family or method family, through Snakemake: stand-ins, data, Bit pretraining, training,
    ingest, report; then coverage of the sample counts every cell it plans as filled."""
    results, resources = tmp_path / "results", tmp_path / "resources"
    cmd = [snakemake(), "--cores", "2", "--nolock", "--config", "rehearsal=true", "rehearsal_sample=true",
           f"results={results}", f"resources={resources}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    root = Path(f"{results}-rehearsal")
    sample = load_config(paper(rehearsal=True, rehearsal_sample=True, results=str(results), resources=str(resources)),
                         PAPER)
    records = [json.loads(p.read_text()) for p in root.glob("runs/*/*/*/*/*/record.json")]
    assert len(records) == len(sample.runs) and all(r["status"] == "ok" for r in records)
    assert all(r["config"]["task"]["rehearsal"] == standin_root(str(resources)) for r in records)
    data = list((resources / "data").glob("*/*"))
    assert len(data) == 8 and all((d / "REHEARSAL").is_file() for d in data)  # fixtures, from the data rule
    assert list(resources.glob("backbones/bit-memory/gpt2/*/config.json"))  # the Bit-pretrained stand-in
    from leaderboard.coverage import coverage, filled_cells

    db = f"sqlite:///{root / 'bench.sqlite'}"
    for c in coverage(sample, filled_cells(db, rehearsal=True)):
        assert c.planned > 0 and c.filled == c.planned, c.line()
    assert filled_cells(db) == set()  # as real results, a rehearsal fills nothing
    # the command a user runs: the config's rehearsal, its own database by default, labelled
    cfg = tmp_path / "paper.yaml"
    cfg.write_text(yaml.safe_dump(paper(rehearsal_sample=True, results=str(results), resources=str(resources))))
    cli = subprocess.run([str(Path(snakemake()).parent / "petl-bench"), "coverage", "--rehearsal", "--config",
                          str(cfg)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    lines = [line for line in cli.stdout.splitlines() if " reported cells, " in line]
    assert len(lines) == 2 and all(re.search(r"(\d+) with a planned run, \1 filled", line) for line in lines), cli.stdout
    assert "no number is a result" in cli.stdout
    assert "Rehearsal." in (root / "leaderboard" / "index.html").read_text()


def test_a_backbone_without_a_config_to_shrink_stops_the_rehearsal_at_planning(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.backbones import standin
    from benchmark.errors import ConfigError

    monkeypatch.setattr(standin, "CONFIG_DIR", tmp_path)  # no shipped configs
    grid = {"grid": [{"tasks": ["sst2"], "methods": ["lora"]}]}
    assert load_config(grid).runs  # a real run does not need one
    with pytest.raises(ConfigError, match=r"tasks\.sst2\.backbone: backbone 'roberta-base': no shipped config"):
        load_config({**grid, "rehearsal": True})
