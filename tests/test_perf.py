"""`petl-bench perf` on tiny backbones: well-formed records, ratios against full fine-tuning and peft.

No timing thresholds: timings on a shared CI machine say nothing; the schema and the pairing do.
Most cases run in-process (fast); one test goes through the command line and its worker processes.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.errors import ConfigError
from benchmark.perf import cases
from benchmark.perf.cases import Case, plan
from benchmark.perf.measure import outcome
from benchmark.perf.run import SCHEMA, add_ratios, format_table, run_perf

HAS_PEFT = importlib.util.find_spec("peft") is not None
SHAPE = dict(batch=2, seq=8, steps=2, warmup=1)


def in_process(case: Case, log: Path, timeout_s: float) -> dict[str, Any]:
    """Measure without a worker process (memory figures then share one process; values aren't checked)."""
    return {**outcome(case), "load_avg": [[0.0, 0.0, 0.0]]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("perf")
    todo = plan(["tiny-roberta", "tiny-bart"], ["lora", "mam"], ["tiny-roberta"], **SHAPE)
    return out, run_perf(todo, out, runner=in_process, progress=lambda line: None)


def test_plan_puts_full_first_and_pairs_peft() -> None:
    todo = plan(["tiny-roberta", "tiny-gpt2"], ["lora", "full"], ["tiny-roberta", "tiny-gpt2"], **SHAPE)
    roberta = [c for c in todo if c.backbone == "tiny-roberta"]
    assert [c.method for c in roberta[:2]] == ["full", "lora"]
    assert roberta[1].budget == "0.5pct"  # He et al. Table 2 budget on an encoder
    assert {(c.compare, c.impl) for c in roberta if c.compare} == {
        (p.compare, impl) for p in cases.PEFT_PAIRS for impl in cases.IMPLS}
    gpt2 = [c.compare for c in todo if c.backbone == "tiny-gpt2" and c.compare]
    assert "lora-r8" not in gpt2 and "prefix-l16" in gpt2  # peft's GPT-2 LoRA is a different size
    bart = plan(["tiny-bart"], ["lora"], ["tiny-bart"], **SHAPE)
    assert {c.compare for c in bart if c.compare} == {"lora-r8"}  # peft's enc-dec prefix/prompt differ in size
    assert todo[len(roberta) - 1] == roberta[0]  # full fine-tuning again at the end (bracketing)
    assert len({(c.backbone, c.label) for c in todo}) == len(todo) - 2  # one record file per case


def test_plan_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="backbone"):
        plan(["tiny-robreta"], ["lora"], [])
    with pytest.raises(ConfigError, match="--peft-on"):
        plan(["tiny-bart"], ["lora"], ["tiny-roberta"])


def test_records_are_well_formed(tiny_run: tuple[Path, list[dict[str, Any]]]) -> None:
    out, records = tiny_run
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records if r["status"] != "ok"]
    for r in records:
        on_disk = json.loads((out / r["backbone"] / f"{r['label']}.json").read_text())
        assert on_disk["schema"] == SCHEMA and on_disk["run_id"] == records[0]["run_id"]
        runs = 2 if r["method"] == "full" else 1  # bracketing pools full fine-tuning's two runs
        assert len(on_disk["timing"]["step_times_s"]) == runs * SHAPE["steps"] == runs * on_disk["timing"]["steps"]
        assert on_disk["timing"]["tokens_per_s"] > 0 and isinstance(on_disk["memory"]["peak_bytes"], int)
        assert on_disk["params"]["trainable"] > 0
        assert on_disk["ratios"]["step_vs_full"] > 0 and "memory_vs_full" in on_disk["ratios"]  # in-process:
        # the cases share one process, so memory values aren't meaningful here (the CLI test checks a worker's)
    assert (out / "table.md").read_text().startswith("| backbone")
    assert len(list((out / "runs").glob("*.json"))) == 1


def test_full_is_the_reference(tiny_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, records = tiny_run
    for backbone in ("tiny-roberta", "tiny-bart"):
        rows = {r["label"]: r for r in records if r["backbone"] == backbone}
        full = rows["full"]
        assert full["ratios"]["step_vs_full"] == 1.0
        assert full["params"]["trainable"] == full["params"]["total"]
        assert all(r["params"]["trainable"] < full["params"]["trainable"] for r in rows.values() if r is not full)
    mam = next(r for r in records if r["backbone"] == "tiny-roberta" and r["method"] == "mam")
    assert mam["budget"] == "l16-r16" and mam["sizes"] == {"l": 16, "r": 16}


def test_tiny_bart_uses_the_seq2seq_head(tiny_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, records = tiny_run
    bart = next(r for r in records if r["backbone"] == "tiny-bart")
    assert bart["head"] == "seq2seq" and bart["shape"]["tokens_per_step"] == 2 * SHAPE["batch"] * SHAPE["seq"]


@pytest.mark.skipif(not HAS_PEFT, reason="peft not installed")
def test_peft_rows_pair_with_ours(tiny_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, records = tiny_run
    peft_rows = [r for r in records if r["impl"] == "peft"]
    assert {r["compare"] for r in peft_rows} == {p.compare for p in cases.PEFT_PAIRS}
    for r in peft_rows:
        ours = next(o for o in records if o["compare"] == r["compare"] and o["impl"] == "petl-bench")
        assert ours["ratios"]["ours_vs_peft_step"] == r["ratios"]["ours_vs_peft_step"] > 0
        assert ours["ratios"]["peft_pair"] == r["label"] and r["peft"]["peft_version"]
    lora = {r["impl"]: r for r in records if r["compare"] == "lora-r8"}
    head = lora["peft"]["params"]["trainable"] - lora["petl-bench"]["params"]["trainable"]
    assert head == 0  # same LoRA size and the same trainable classification head
    assert "ours ÷ peft" in format_table(records)


def test_missing_peft_degrades(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    real = builtins.__import__

    def no_peft(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "peft":
            raise ImportError("no peft here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    todo = [Case("tiny-roberta", "full", **SHAPE),
            Case("tiny-roberta", "lora", "r8", "peft", "lora-r8", **SHAPE)]
    records = run_perf(todo, tmp_path, runner=in_process, progress=lambda line: None)
    unavailable = records[1]
    assert unavailable["status"] == "unavailable" and "peft is not installed" in unavailable["error"]
    assert "unavailable (peft is not installed" in format_table(records)
    assert records[0]["ratios"]["step_vs_full"] == 1.0


def test_a_reference_that_refuses_the_model_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """peft installed but refusing the model (as peft 0.21.2 refuses RoBERTa under transformers 5.24): the row is
    'unavailable (reason)', ours still runs, and the run as a whole is not a failure."""
    from benchmark.perf import measure as measure_mod

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("Model does not support past key values which are required for prefix tuning.")

    monkeypatch.setattr(measure_mod, "_peft", refuse)
    todo = [Case("tiny-roberta", "full", **SHAPE), Case("tiny-roberta", "prefix", "l16", "petl-bench", "prefix-l16",
                                                         {"reparam": False}, **SHAPE),
            Case("tiny-roberta", "prefix", "l16", "peft", "prefix-l16", **SHAPE)]
    records = run_perf(todo, tmp_path, runner=in_process, progress=lambda line: None)
    assert [r["status"] for r in records] == ["ok", "ok", "unavailable"]
    assert "past key values" in records[2]["error"]
    assert "unavailable (ValueError: Model does not support past key values" in format_table(records)


def test_ratios_need_a_full_row() -> None:
    rec = {"status": "ok", "backbone": "b", "method": "lora", "impl": "petl-bench", "compare": None, "label": "lora",
           "timing": {"step_s": 1.0, "tokens_per_s": 1.0}, "memory": {"peak_bytes": 1}, "ratios": {}}
    add_ratios([rec])
    assert rec["ratios"] == {}


def test_cli_runs_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command line, each case in its own worker process (the path real measurements take)."""
    from benchmark.cli import main

    code = main(["perf", "--backbones", "tiny-bert", "--methods", "full", "--batch", "2", "--seq", "8",
                 "--steps", "1", "--warmup", "1", "--no-flops", "--out", str(tmp_path)])
    assert code == 0, (tmp_path / "tiny-bert" / "full.log").read_text()[-2000:]
    full = json.loads((tmp_path / "tiny-bert" / "full.json").read_text())
    assert full["status"] == "ok" and full["ratios"]["step_vs_full"] == 1.0
    assert full["memory"]["kind"] == "rss_sampled_live" and full["memory"]["baseline_rss_bytes"] > 0
    assert full["memory"]["peak_bytes"] > 0 and full["ratios"]["memory_vs_full"] == 1.0
    assert full["timing"]["flops_per_step"] is None and full["provenance"]["git_commit"]
    assert "| tiny-bert | full |" in capsys.readouterr().out


def test_cost_page_renders(tiny_run: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    from leaderboard.cost import cost_index, load_perf, render_cost
    from leaderboard.site import environment

    perf_dir, records = tiny_run
    loaded = load_perf(perf_dir)
    assert len(loaded) == len(records)
    page = render_cost(environment(), tmp_path, perf_dir, {"generated": "now", "n_runs": 0, "has_cost": True})
    html = page.read_text()
    assert "tiny-roberta" in html and "ours ÷ peft" in html and 'href="cost.html"' in html
    assert json.loads((tmp_path / "data" / "cost.json").read_text())[0]["schema"] == SCHEMA
    index = cost_index(loaded)
    assert index[("lora", "0.5pct", "tiny-roberta")]["vs_full"] != "—"
    lora = next(r for r in loaded if (r["method"], r["budget"], r["impl"]) == ("lora", "0.5pct", "petl-bench"))
    p = lora["params"]  # one named count solves the budget and is shown: the paper formula's
    assert p["formula_pct"] == 100 * p["formula"] / p["backbone"] and p["formula_pct"] <= 0.5
    assert ">params % (paper formula)</th>" in html and ">all trainable %</th>" in html
    assert ("lora", "r8", "tiny-roberta") not in index  # peft-pair rows stay on the cost page
    assert render_cost(environment(), tmp_path / "none", tmp_path / "missing", {}) is None


def test_rss_sampler_sees_a_freed_block_and_the_os_gets_it_back() -> None:
    """The CPU peak is sampled live memory: a block allocated and freed inside the step is counted, and with the
    mmap threshold pinned it leaves RSS when freed (a high-water mark would keep counting retained heap)."""
    import time

    import torch

    from benchmark.perf.measure import RssSampler, release_freed, return_large_frees, rss_bytes

    assert return_large_frees()
    release_freed()
    before = rss_bytes()
    with RssSampler() as sampler:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written so its pages are resident
        time.sleep(0.05)
        del block
    assert sampler.peak - before >= 60 * 2**20
    assert rss_bytes() - before < 16 * 2**20
