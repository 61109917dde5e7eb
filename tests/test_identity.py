"""Run identity: a run's folder, checkpoints and record belong to exactly one resolved spec (real processes, real
kills, real Snakemake)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark.config import Run, load_config
from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from conftest import petl_bench

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
BASE = {"tasks": {"bit-xor": {"backbone": "tiny-bert"}}, "grid": [{"tasks": ["bit-xor"], "methods": ["lora"]}]}


# ---- the identity ------------------------------------------------------------------------------------------------

def test_digest_covers_what_changes_a_result_and_nothing_else() -> None:
    spec = load_config(BASE).spec(Run("bit-xor", "lora", "default", 1))
    assert spec.with_(threads=8).digest == spec.digest  # threads, names and labels are not identity
    changed = [spec.with_(train={**spec.train, "learning_rate": 0.5}), spec.with_(seed=2),
               spec.with_(budget="r4"), spec.with_(method={**spec.method, "init": "random"})]
    assert len({s.digest for s in changed} | {spec.digest}) == 5
    assert spec.with_(seed=2).variant == spec.variant  # seeds of one configuration share the variant
    other_backbone = load_config({**BASE, "tasks": {"bit-xor": {"backbone": "tiny-gpt2"}}})
    assert other_backbone.spec(Run("bit-xor", "lora", "default", 1)).path != spec.path


def test_two_blocks_with_different_settings_are_two_runs() -> None:
    """Two grid blocks that run `full` at two learning rates (as an earlier mini-text preset did, which lost one of
    them): both exist, in two folders, with labels that tell them apart."""
    cfg = load_config({**BASE, "grid": [{"tasks": ["bit-xor"], "methods": ["full"], "seeds": [1]},
                                        {"tasks": ["bit-xor"], "methods": ["full"], "seeds": [1],
                                         "train": {"learning_rate": 5.0e-5}}]})
    full = [s for r, s in cfg.specs.items() if r.task == "bit-xor" and r.method == "full" and r.seed == 1]
    assert sorted(s.train["learning_rate"] for s in full) == [5e-05, 1e-3]
    assert len({s.path for s in full}) == 2 and {s.label for s in full} == {"full", "full (learning_rate=5e-05)"}


def test_each_config_has_its_own_results_root() -> None:
    roots = {f.name: load_config(f).raw["results"] for f in (REPO / "config").glob("*.yaml")}
    assert roots["config.yaml"] == "results/config" and roots["mini.yaml"] == "results/mini"
    assert len(set(roots.values())) == len(roots)


@pytest.mark.parametrize("name", ["x$(touch PWNED)", "a b", "..", "../up", "-x", "a/b", "q'uote", ""])
def test_hostile_names_are_refused_at_planning(name: str) -> None:
    for cfg in ({**BASE, "grid": [{"tasks": ["bit-xor"], "methods": [name]}], "methods": {name: {"compose": []}}},
                {"tasks": {name: {"task": "bit-xor"}}, "grid": [{"tasks": [name], "methods": ["lora"]}]},
                {**BASE, "grid": [{"tasks": ["bit-xor"], "methods": ["lora"], "budgets": [name]}]}):
        with pytest.raises(ConfigError, match="is not allowed; use only letters, digits and"):
            load_config(cfg)


def test_config_method_may_not_shadow_a_builtin_unless_marked() -> None:
    mine = {"compose": [{"form": "lowrank", "site": "ffn", "r": 4}]}
    with pytest.raises(ConfigError, match=r"methods.lora: 'lora' is already a method .*override: true"):
        load_config({**BASE, "methods": {"lora": mine}})
    spec = load_config({**BASE, "methods": {"lora": {**mine, "override": True}}}).spec(Run("bit-xor", "lora",
                                                                                        "default", 1))
    assert spec.method["override"] is True and spec.paper["override"] is True
    assert spec.method["compose"][0]["site"] == "ffn"


def test_hostile_name_in_snakemake_runs_no_command(tmp_path: Path) -> None:
    config = {**BASE, "results": str(tmp_path / "r"), "methods": {"x$(touch PWNED)": {"compose": []}},
              "grid": [{"tasks": ["bit-xor"], "methods": ["x$(touch PWNED)"]}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run([str(SNAKEMAKE), "--cores", "1", "-d", str(tmp_path), "-s", str(REPO / "Snakefile"),
                          "--configfile", str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "is not allowed" in out.stdout + out.stderr
    assert not (tmp_path / "PWNED").exists() and not (REPO / "PWNED").exists()


# ---- Snakemake reruns exactly what changed ------------------------------------------------------------------------

STAND_IN = '''#!/usr/bin/env python3
import sys
from pathlib import Path
a = sys.argv[1:]
opt = lambda n: a[a.index(n) + 1]
if a[0] == "train":
    Path(opt("--out")).mkdir(parents=True, exist_ok=True); Path(opt("--out"), "record.json").write_text("{}")
elif a[0] == "ingest":
    Path(opt("--db")).write_text("")
elif a[0] == "report":
    Path(opt("--out")).mkdir(parents=True, exist_ok=True); Path(opt("--out"), "index.html").write_text("")
    for folder in ("--tables", "--plots"):
        if folder in a:
            Path(opt(folder)).mkdir(parents=True, exist_ok=True)
'''


def test_a_config_change_reruns_exactly_the_changed_runs(tmp_path: Path) -> None:
    """After a complete grid (jobs done by a stand-in that only writes their outputs, so Snakemake keeps its real
    metadata), changing one task's learning rate plans exactly that task's runs, plus ingest and report."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "petl-bench").write_text(STAND_IN)
    (tmp_path / "bin" / "petl-bench").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    cfg = {"results": "res ults",
           "tasks": {"bit-xor": {"backbone": "tiny-bert"}, "bit-memory": {"backbone": "tiny-bert"}},
           "grid": [{"tasks": ["bit-xor", "bit-memory"], "methods": ["lora", "bitfit"], "seeds": [1, 2]}]}

    def snakemake(*args: str) -> str:
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
        out = subprocess.run([str(SNAKEMAKE), *args, "--cores", "1", "-d", str(tmp_path), "-s",
                              str(REPO / "Snakefile"), "--configfile", str(tmp_path / "c.yaml")],
                             capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout + out.stderr

    def counts(text: str) -> dict[str, int]:
        import re
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", text, re.M)}

    assert counts(snakemake("-n"))["train"] == 8
    snakemake()  # a results path with a space works
    assert len(list((tmp_path / "res ults" / "runs").rglob("record.json"))) == 8
    assert "Nothing to be done" in snakemake("-n")
    cfg["tasks"]["bit-xor"]["train"] = {"learning_rate": 0.5}
    assert counts(snakemake("-n")) == {"train": 4, "plan": 1, "ingest": 1, "report": 1, "all": 1, "total": 8}
    cfg["threads"] = 2  # not part of any run's identity
    del cfg["tasks"]["bit-xor"]["train"]
    assert "Nothing to be done" in snakemake("-n")


# ---- resume only what is yours ------------------------------------------------------------------------------------

ARGS = ["--task", "bit-xor", "--method", "lora", "--backbone", "tiny-bert", "--seed", "3", "--set", "batch_size=4",
        "--set", "save_steps=10", "--set", "eval_steps=20"]


def train(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([petl_bench(), "train", *ARGS, "--out", str(out), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def record(out: Path) -> dict:
    return json.loads((out / "record.json").read_text())


def kill_when(proc: subprocess.Popen, ready, what: str) -> None:
    deadline = time.time() + 300
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.time() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("straight")
    finish(train(out, "--set", "max_steps=40"))
    return record(out)


@pytest.mark.slow
def test_killed_mid_run_and_mid_checkpoint_write_resumes_identically(tmp_path: Path, straight: dict) -> None:
    out = tmp_path / "run"
    proc = train(out, "--set", "max_steps=40")
    kill_when(proc, lambda: (out / "checkpoint" / "checkpoint-20" / "identity.json").exists(), "step 20")
    assert not (out / "record.json").exists()
    # what SIGKILL inside the Trainer's checkpoint write leaves: a newer checkpoint folder, files cut short, no stamp
    # (the real kill may itself have landed mid-write, so count from the newest *stamped* checkpoint)
    newest = max((c for c in (out / "checkpoint").glob("checkpoint-*") if (c / "identity.json").exists()),
                 key=lambda p: int(p.name.split("-")[1]))
    cut = out / "checkpoint" / "checkpoint-1000"
    shutil.copytree(newest, cut)
    (cut / "identity.json").unlink()
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 3])
    finish(train(out, "--set", "max_steps=40"))
    r = record(out)
    assert r["train"]["resumed_from"] == str(newest) and r["train"]["steps"] == straight["train"]["steps"] == 40
    scores = lambda rec: [(c["step"], c["eval_loss"], c["eval_accuracy"]) for c in rec["curve"]]  # no timings
    assert r["metrics"] == straight["metrics"] and scores(r) == scores(straight)
    assert "removing incomplete checkpoint" in (out / "run.log").read_text()


@pytest.mark.slow
def test_real_kill_inside_a_checkpoint_write_resumes_from_the_previous_one(tmp_path: Path) -> None:
    """Full fine-tuning of MiniLM-L6 writes ~270 MB per checkpoint: SIGKILL once checkpoint-6 has its first file."""
    args = ["--method", "full", "--backbone", "minilm-l6", "--set", "max_steps=9", "--set", "save_steps=3",
            "--set", "eval_steps=9", "--set", "learning_rate=0.0001"]
    out, straight = tmp_path / "run", tmp_path / "straight"
    proc = train(out, *args)
    ckpt = out / "checkpoint" / "checkpoint-6"
    kill_when(proc, lambda: ckpt.is_dir() and any(ckpt.iterdir()), "its second checkpoint")
    assert not (ckpt / "identity.json").exists(), "killed too late to test this"
    finish(train(out, *args))
    finish(train(straight, *args))
    r, s = record(out), record(straight)
    assert r["train"]["resumed_from"].endswith("checkpoint-3")
    assert r["train"]["steps"] == s["train"]["steps"] == 9 and r["metrics"] == s["metrics"]
    assert "removing incomplete checkpoint" in (out / "run.log").read_text()


@pytest.mark.slow
def test_killed_after_the_last_checkpoint_ends_identically(tmp_path: Path, straight: dict) -> None:
    out = tmp_path / "run"
    proc = train(out, "--set", "max_steps=40", "--set", "eval_steps=40", "--set", "eval_batch_size=8")
    # the final evaluation over the eval set runs between the last checkpoint and record.json
    kill_when(proc, lambda: (out / "checkpoint" / "checkpoint-40" / "identity.json").exists(), "its last checkpoint")
    assert not (out / "record.json").exists(), "killed too late to test this"
    finish(train(out, "--set", "max_steps=40", "--set", "eval_steps=40", "--set", "eval_batch_size=8"))
    again = tmp_path / "again"
    finish(train(again, "--set", "max_steps=40", "--set", "eval_steps=40", "--set", "eval_batch_size=8"))
    r, s = record(out), record(again)
    assert r["train"]["resumed_from"].endswith("checkpoint-40")
    assert r["train"]["steps"] == s["train"]["steps"] == 40 and r["metrics"] == s["metrics"]


@pytest.mark.slow
def test_forced_rerun_after_a_learning_rate_change_is_a_fresh_run(tmp_path: Path) -> None:
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    finish(train(out, "--set", "max_steps=20", "--keep-checkpoints"))
    assert (out / "checkpoint" / "checkpoint-20").is_dir()
    refused = train(out, "--set", "max_steps=20", "--set", "learning_rate=0.01")
    _, err = refused.communicate(timeout=300)
    assert refused.returncode == 2 and "already holds a record" in err
    (out / "record.json").unlink()
    foreign = train(out, "--set", "max_steps=20", "--set", "learning_rate=0.01")
    _, err = foreign.communicate(timeout=300)
    assert foreign.returncode == 2 and "belongs to run" in err and "--force" in err
    finish(train(out, "--set", "max_steps=20", "--set", "learning_rate=0.01", "--force"))
    finish(train(fresh, "--set", "max_steps=20", "--set", "learning_rate=0.01"))
    r, f = record(out), record(fresh)
    assert r["train"]["resumed_from"] is None and r["config"]["train"]["learning_rate"] == 0.01
    assert r["metrics"] == f["metrics"] and r["digest"] == f["digest"]
    assert not (out / "checkpoint").exists() and (out / "delta.safetensors").is_file()


@pytest.mark.slow
def test_a_second_trainer_in_the_same_folder_refuses(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = train(out, "--set", "max_steps=100000")
    deadline = time.time() + 120
    while not ((out / ".lock").exists() and (out / ".lock").read_text().strip()):
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.05)
    second = train(out, "--set", "max_steps=100000")
    _, err = second.communicate(timeout=300)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert second.returncode == 2
    assert f"PID {first.pid} on host {socket.gethostname()}" in err


# ---- records and ingest -------------------------------------------------------------------------------------------

def test_ingest_refuses_non_finite_metrics_and_float_seeds_by_name(tmp_path: Path) -> None:
    from benchmark.record import RecordError
    from leaderboard.ingest import ingest
    from leaderboard.synthetic import make_record, write_record

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    runs = tmp_path / "runs"
    nan = make_record("bit-xor", "lora", seed=1)
    nan["metrics"]["accuracy"] = float("nan")
    path = write_record(runs, nan)
    with pytest.raises(RecordError, match=f"{path}: metric 'accuracy' is nan, not a finite number"):
        ingest(runs, url)
    bad_seed = make_record("bit-xor", "lora", seed=1)
    bad_seed["key"]["seed"] = 1.7
    path.write_text(json.dumps(bad_seed))
    with pytest.raises(RecordError, match=r"key.seed 1.7 is not a non-negative integer"):
        ingest(runs, url)


def test_a_deleted_record_disappears_from_the_database(tmp_path: Path) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from leaderboard.ingest import ingest
    from leaderboard.store import Run as RunRow, engine_for
    from leaderboard.synthetic import make_record, write_record

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    runs = tmp_path / "runs"
    paths = [write_record(runs, make_record("bit-xor", "lora", seed=s)) for s in (1, 2, 3)]
    ingest(runs, url)
    paths[1].unlink()
    ingest(runs, url)
    with Session(engine_for(url)) as s:
        assert sorted(s.scalars(select(RunRow.seed))) == [1, 3]
        assert s.scalar(select(func.count()).select_from(RunRow)) == 2


def test_report_on_a_missing_database_is_an_error(tmp_path: Path) -> None:
    out = subprocess.run([petl_bench(), "report", "--db", str(tmp_path / "nope.sqlite"), "--out", str(tmp_path / "lb")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no such database" in out.stderr
    assert not (tmp_path / "nope.sqlite").exists()


# ---- bad data fails fast and says where ---------------------------------------------------------------------------

def _sst2_copy(tmp_path: Path) -> Path:
    src = REPO.parent / "shared" / "data" / "sst2"
    if not src.is_dir():
        src = Path("/work/shared/data/sst2")
    folder = tmp_path / "sst2"
    shutil.copytree(src, folder)
    return folder


@pytest.mark.parametrize("case", ["columns", "truncated", "garbage"])
def test_bad_data_file_is_named_with_line_and_columns(tmp_path: Path, case: str) -> None:
    from benchmark import registry
    from benchmark.tasks.base import MAX_LINE

    folder = _sst2_copy(tmp_path)
    bad = folder / "validation.jsonl"
    lines = bad.read_text().splitlines(keepends=True)
    if case == "columns":
        lines[2] = json.dumps({"text": "x", "label": 1}) + "\n"
        bad.write_text("".join(lines))
        want = r"validation.jsonl, line 3: lacks column\(s\) sentence .*columns sentence, label"
    elif case == "truncated":
        bad.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        want = rf"validation.jsonl, line {len(lines)}: not valid JSON \(the last line is cut short"
    else:
        with open(bad, "wb") as f:  # 64 MiB of garbage without a newline
            f.write(os.urandom(1 << 20).replace(b"\n", b"x") * 64)
        want = rf"validation.jsonl, line 1: longer than {MAX_LINE} bytes"
    task = registry.get_task("sst2")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=want):
        task.prepare(TaskSettings.of(task, data_dir=str(folder)), tmp_path / "out")
    assert time.perf_counter() - start < 5


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("tasks:\n  bit-xor: {backbone: tiny-bert\ngrid: []\n")
    with pytest.raises(ConfigError, match=r"c.yaml, line \d+, column \d+: not valid YAML"):
        load_config(tmp_path / "c.yaml")


# ---- the leaderboard groups by identity ---------------------------------------------------------------------------

def test_leaderboard_groups_by_identity_and_maps_paper_cells_by_explicit_fields(tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    from leaderboard import tables
    from leaderboard.aggregate import load_groups
    from leaderboard.ingest import ingest
    from leaderboard.site import ReportedIndex, group_row, render_site
    from leaderboard.store import engine_for
    from leaderboard.synthetic import make_record, write_record

    runs = tmp_path / "runs"
    for seed in (1, 2):  # one method at two learning rates: two configurations, never pooled
        write_record(runs, make_record("bit-xor", "full", seed=seed, value=60.0))
        write_record(runs, make_record("bit-xor", "full", seed=seed, value=90.0, overrides={"learning_rate": 1e-4}))
    # a config `lora` (its own settings) over the built-in
    write_record(runs, make_record("bit-xor", "lora", value=10.0, override=True, overrides={"learning_rate": 0.5}))
    write_record(runs, make_record("bit-xor", "lora", value=70.0))
    # an instance whose name means nothing to the leaderboard: its task family and backbone place it
    write_record(runs, make_record("c10-big", "fpt", value=69.0, family="cifar10", backbone="gpt2-medium"))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ingest(runs, url)
    with Session(engine_for(url)) as s:
        groups = load_groups(s)
        reported = ReportedIndex.load(s)
    full = sorted((g for g in groups if g.method == "full"), key=lambda g: g.label)
    assert [(g.label, g.headline.mean, g.headline.n) for g in full] == [
        ("full", 60.0, 2), ("full (learning_rate=0.0001)", 90.0, 2)]
    lora = {g.override: g for g in groups if g.method == "lora"}
    shown = group_row(lora[True], reported, [], "")["method"]
    assert shown == "lora (learning_rate=0.5) [config override of the built-in]"
    views = {v.table.id: v for v in tables.build_views(groups)}
    scaling = next(r for r in views["lu2021-scaling"].rows if r.row == "FPT, GPT-2 medium")
    assert scaling.cells[0].reproduced.mean == 69.0
    table1 = views["lu2021-table1"]
    assert all(c is None or c.reproduced is None or c.reproduced.mean != 10.0 for r in table1.rows for c in r.cells)
    page = (render_site(url, tmp_path / "lb").parent / "tasks" / "bit-xor.html").read_text()
    assert "full (learning_rate=0.0001)" in page and "[config override of the built-in]" in page
