"""One run end to end on a tiny random BERT: the record, its counts, and what happens when things go wrong."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.config import Run, load_config
from benchmark.record import RecordError, read_record, write_record
from benchmark.spec import RunSpec
from benchmark.train import process_age_s, timing, train_run

CFG = {"tasks": {"bit-xor": {"backbone": "tiny-bert", "options": {"eval_size": 32},
                             "train": {"max_steps": 6, "batch_size": 4, "eval_steps": 3, "save_steps": 3}}},
       "grid": [{"tasks": ["bit-xor"], "methods": ["full", "fpt", "lora"]}]}


def spec(method: str, **train) -> RunSpec:
    cfg = load_config(CFG)
    s = cfg.spec(Run("bit-xor", method, "default", 1))
    return s.with_(train={**s.train, **train})


@pytest.fixture(scope="module")
def fpt_record(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("run") / "bit-xor" / "fpt" / "default" / "1"
    return train_run(spec("fpt"), out), out


def test_record_has_design_fields(fpt_record) -> None:
    record, out = fpt_record
    assert read_record(out / "record.json") == json.loads(json.dumps(record, default=str))
    assert record["status"] == "ok" and 0 <= record["metrics"]["accuracy"] <= 100
    assert record["key"] == {"task": "bit-xor", "method": "fpt", "budget": "default", "seed": 1}
    assert record["train"]["steps"] == 6 and record["wall_time_s"] > 0 and record["peak_memory_mb"] > 0
    prov = record["provenance"]
    for field in ("git_commit", "git_dirty", "packages", "torch", "device", "host", "seed", "started", "finished"):
        assert field in prov
    assert prov["packages"]["transformers"] and prov["seed"] == 1
    assert record["config"]["task"]["backbone"] == "tiny-bert"
    assert [c["step"] for c in record["curve"]] == [3, 6]
    # after the record only the deltas, the log and the record stay (full checkpoints are removed)
    assert not (out / "checkpoint").exists() and not list(out.glob(".record-*"))
    assert sorted(p.name for p in out.iterdir()) == [".lock", "delta.safetensors", "record.json"]
    assert record["digest"] == spec("fpt").digest and record["variant"] == spec("fpt").variant
    assert (out / "record.json").stat().st_mode & 0o040  # group-readable, like the log
    assert record["determinism"]["cuda"] is False and record["determinism"]["nondeterministic"] == []
    assert record["determinism"]["exact_repeat_expected"] is True


def test_record_says_where_the_time_went(fpt_record) -> None:
    record, _ = fpt_record
    t = record["timing"]
    assert set(t) == {"startup_s", "setup_s", "train_s", "eval_s", "record_s", "fixed_s", "fixed_cpu_s", "warm_start"}
    assert t["setup_s"] > 0 and t["train_s"] > 0 and t["eval_s"] > 0 and t["record_s"] > 0
    assert t["eval_s"] >= sum(h["eval_runtime"] for h in record["curve"])  # two evaluations inside the loop
    assert t["fixed_s"] == pytest.approx((t["startup_s"] or 0) + t["setup_s"] + t["record_s"])
    assert 0 < t["fixed_cpu_s"] < t["fixed_s"] * 2  # one training thread: CPU time near the wall time, never 0
    # every phase but the process start lies inside wall_time_s, which stops before provenance
    assert t["setup_s"] + t["train_s"] + t["eval_s"] <= record["wall_time_s"]


def test_timing_splits_loop_evaluations_from_training() -> None:
    curve = [{"step": 3, "eval_runtime": 0.5}, {"step": 6, "eval_runtime": 0.25}]
    assert timing(2.0, 1.5, 10.0, curve, 0.25, 0.5, 3.5) == {
        "startup_s": 2.0, "setup_s": 1.5, "train_s": 9.25, "eval_s": 1.0, "record_s": 0.5, "fixed_s": 4.0,
        "fixed_cpu_s": 3.5, "warm_start": False}
    assert timing(None, 1.0, 2.0, [], 0.0, 0.5)["fixed_s"] == 1.5  # no /proc: the process start is unknown


def test_process_age_counts_from_the_process_start() -> None:
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5); "
                            "from benchmark.train import process_age_s; print(process_age_s())"],
                           capture_output=True, text=True, check=True)
    # the child's own age (it slept 0.5 s), less than this older process's age, far less than the machine's uptime
    assert 0.5 <= float(child.stdout) < process_age_s()


def test_fpt_trains_exactly_norms_positions_input_output(fpt_record) -> None:
    import torch

    record, _ = fpt_record
    names = set(record["params"]["trainable_tensors"])
    assert names and all(("LayerNorm" in n or "position_embeddings" in n or n.startswith(("input_layer.",
                          "output_layer."))) for n in names)
    assert {"input_layer.weight", "output_layer.weight", "backbone.embeddings.position_embeddings.weight"} <= names
    d, layers, max_pos = 32, 2, 512
    norms = (1 + 2 * layers) * 2 * d  # embedding LN + 2 per layer, weight and bias each
    expected = norms + max_pos * d + (1 * d + d) + (d * 2 + 2)  # positions, input (1→d), output (d→2)
    assert record["params"]["trainable"] == expected
    # Lu et al.'s own count beside ours: the position table for the 10 positions bit-xor reads, not all 512
    assert (record["params"]["positions_used"], record["params"]["trainable_positions_used"]) == (
        10, expected - (max_pos - 10) * d)
    assert torch.isclose(torch.tensor(record["params"]["trainable_pct"]),
                         torch.tensor(100 * expected / record["params"]["backbone"]))


def test_lora_counts_match_formula(tmp_path) -> None:
    record = train_run(spec("lora", max_steps=2, eval_steps=None), tmp_path / "lora")
    r, d, layers = 16, 32, 2
    lora = layers * 2 * r * (d + d)  # q and v: down (r×d) + up (d×r)
    assert record["params"]["formula"] == lora
    assert record["params"]["trainable"] == lora + (d * 2 + 2) + 0  # + output layer; the input layer stays frozen
    assert record["method"]["sizes"] == {"r": 16}


def test_full_trains_everything(tmp_path) -> None:
    """Everything but what the model never reads: behind FPT's input layer, the backbone's token table."""
    record = train_run(spec("full", max_steps=2, eval_steps=None), tmp_path / "full")
    from benchmark.backbones.registry import get_backbone

    p, cfg = record["params"], get_backbone("tiny-bert").config()
    assert "backbone.embeddings.word_embeddings.weight" not in p["trainable_tensors"]
    assert p["total"] - p["trainable"] == cfg.vocab_size * cfg.hidden_size


def test_existing_record_never_overwritten(fpt_record) -> None:
    record, out = fpt_record
    before = (out / "record.json").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a record.*--force"):
        train_run(spec("fpt"), out)
    with pytest.raises(FileExistsError):
        write_record(record, out / "record.json")
    assert (out / "record.json").read_bytes() == before


def test_failed_run_leaves_log_and_no_record(tmp_path, monkeypatch, capsys) -> None:
    from benchmark.tasks.bits import BitXor

    def boom(self, *a, **k):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(BitXor, "data", boom)
    out = tmp_path / "run"
    assert main(["train", "--task", "bit-xor", "--method", "fpt", "--backbone", "tiny-bert", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == f"petl-bench train: failed: RuntimeError: disk on fire (traceback in {out / 'run.log'})\n"
    text = (out / "run.log").read_text()
    assert "disk on fire" in text and text.count("Traceback") == 1
    assert not (out / "record.json").exists() and not list(out.glob(".record-*"))
    failed = read_record(out / "failed.json")
    assert failed["status"] == "failed" and "RuntimeError: disk on fire" in failed["error"]
    assert "boom" in failed["error_tail"] and failed["key"]["method"] == "fpt"


def test_run_log_is_one_line_per_event_with_eval_metrics(tmp_path, capsys) -> None:
    """Not at a terminal (as under Snakemake): no progress-bar carriage returns or ANSI codes, no line twice,
    and every evaluation's metrics in the log."""
    out = tmp_path / "run"
    assert main(["train", "--task", "bit-xor", "--method", "fpt", "--backbone", "tiny-bert", "--set", "max_steps=4",
                 "--set", "eval_steps=2", "--set", "log_steps=2", "--out", str(out)]) == 0
    text = (out / "run.log").read_text()
    assert "\r" not in text and "\x1b[" not in text
    lines = [line.split(" ", 2)[2] for line in text.splitlines()]  # without the timestamp
    assert len(lines) == len(set(lines)), text
    evals = [line for line in lines if " eval: " in line]
    assert any("step 2/4 eval: " in e and "accuracy=" in e for e in evals), text
    assert any("step 4/4 eval: " in e for e in evals) and any("step 4/4 final eval: " in e for e in lines), text
    assert any(" train: loss=" in line for line in lines) and any("training done: train_loss=" in line for line in lines)
    assert capsys.readouterr().err == ""  # nothing on stderr but a terminal's progress bars


def test_divergence_is_recorded(tmp_path) -> None:
    record = train_run(spec("full", learning_rate=1e30, max_steps=40, eval_steps=None), tmp_path / "div")
    assert record["status"] == "diverged" and record["diverged_at_step"] >= 1
    assert record["metrics"] == {}


def test_truncated_record_is_named(tmp_path) -> None:
    bad = tmp_path / "record.json"
    bad.write_text('{"schema": 1, "key": {"task": "bit-x')
    with pytest.raises(RecordError, match=f"{bad}: not valid JSON"):
        read_record(bad)


def test_same_seed_same_metrics(tmp_path) -> None:
    a = train_run(spec("lora", max_steps=3, eval_steps=None), tmp_path / "a")
    b = train_run(spec("lora", max_steps=3, eval_steps=None), tmp_path / "b")
    assert a["metrics"] == b["metrics"] and not math.isnan(a["metrics"]["loss"])
