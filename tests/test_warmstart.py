"""Warm starts (benchmark.warmstart): a job forked from the warm server is the job's own process in every way that
matters (result, exit status, signals, streams), and whatever goes wrong with the server, the job runs cold."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest
from safetensors.torch import load_file

from benchmark import warmstart
from conftest import petl_bench, snakemake

TRAIN = ["train", "--config", "config/smoke.yaml", "--task", "bit-xor", "--method", "lora", "--set", "eval_steps=4"]


def _start_server(repo):
    folder = Path(tempfile.mkdtemp(prefix="petl-warm-test-"))
    path = folder / "socket"
    proc = subprocess.Popen([petl_bench(), "warm-server", "--socket", str(path)], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _until(lambda: path.exists() or proc.poll() is not None, 120, "the warm server did not listen within 120 s")
    assert proc.poll() is None, proc.stdout.read()
    yield proc, path
    proc.terminate()
    proc.wait(timeout=10)
    assert not path.exists(), "the server leaves no socket behind"
    folder.rmdir()


@pytest.fixture(scope="module")
def server(repo):
    """A warm server on a short socket path, as the workflow starts it, shared by the tests that leave it running."""
    yield from _start_server(repo)


@pytest.fixture
def own_server(repo):
    yield from _start_server(repo)


def _train(repo, out: Path, warm: Path | None, *extra: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != warmstart.ENV}
    if warm is not None:
        env[warmstart.ENV] = str(warm)
    return subprocess.Popen([petl_bench(), *TRAIN, "--out", str(out), *extra], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _until(done: Callable[[], bool], timeout_s: float, why: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def _wait_for_step(log: Path) -> None:
    _until(lambda: log.is_file() and " step " in log.read_text(), 120, f"no training step in {log}")


def _untimed(curve: list[dict]) -> list[dict]:
    return [{k: v for k, v in point.items() if "runtime" not in k and "per_second" not in k} for point in curve]


def test_a_warm_started_job_gives_exactly_the_result_of_its_own_process(repo, tmp_path, server):
    _, path = server
    for name, warm in (("cold", None), ("warm", path)):
        job = _train(repo, tmp_path / name, warm, "--set", "max_steps=8")
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["status"] == "ok"  # stdout reaches the job's own stream
    cold, warm = (json.loads((tmp_path / n / "record.json").read_text()) for n in ("cold", "warm"))
    assert (cold["timing"]["warm_start"], warm["timing"]["warm_start"]) == (False, True)
    assert warm["metrics"] == cold["metrics"] and _untimed(warm["curve"]) == _untimed(cold["curve"])
    assert warm["config"] == cold["config"] and warm["params"] == cold["params"]
    deltas = [load_file(tmp_path / n / "delta.safetensors") for n in ("cold", "warm")]
    assert deltas[0].keys() == deltas[1].keys() and deltas[0]
    assert all(deltas[0][k].equal(deltas[1][k]) for k in deltas[0])


def test_a_refused_job_says_the_same_and_exits_the_same_warm_or_cold(repo, tmp_path, server):
    _, path = server
    answers = []
    for name, warm in (("cold", None), ("warm", path)):
        job = _train(repo, tmp_path / name, warm, "--data", str(tmp_path / "no-such-folder"))
        out, err = job.communicate(timeout=120)
        answers.append((job.returncode, err.strip().splitlines()[-1]))
    assert answers[0] == answers[1]
    assert answers[0][0] == 2 and "no-such-folder" in answers[0][1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_to_the_job_ends_its_warm_process_too(repo, tmp_path, server, sig):
    """Snakemake stops a job by signalling its process, the proxy: the forked child must end with it, and the job
    must end as a cold one would (killed by that signal)."""
    proc, path = server
    job = _train(repo, tmp_path / "run", path, "--set", "max_steps=100000")
    _wait_for_step(tmp_path / "run" / "run.log")
    (child,) = _children(proc.pid)
    job.send_signal(sig)
    assert job.wait(timeout=30) == -sig
    _until(lambda: not _children(proc.pid) and not Path(f"/proc/{child}").exists(), 15,
           f"the warm child {child} outlived its job's process")


def test_a_killed_warm_process_fails_its_job_as_killed(repo, tmp_path, server):
    proc, path = server
    job = _train(repo, tmp_path / "run", path, "--set", "max_steps=100000")
    _wait_for_step(tmp_path / "run" / "run.log")
    (child,) = _children(proc.pid)
    os.kill(child, signal.SIGKILL)  # the out-of-memory killer's way
    assert job.wait(timeout=30) == -signal.SIGKILL


def test_without_a_live_server_the_job_runs_in_its_own_process(repo, tmp_path):
    dead = tmp_path / "socket"  # named, but nobody listens
    job = _train(repo, tmp_path / "run", dead, "--set", "max_steps=2")
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    assert json.loads((tmp_path / "run" / "record.json").read_text())["timing"]["warm_start"] is False


def test_edited_code_stops_the_server_and_later_jobs_run_cold(repo, tmp_path, own_server):
    """A child runs the code the server imported: once an imported file changes, no job may get the old code."""
    proc, path = own_server
    imported = Path(warmstart.__file__).with_name("errors.py")  # imported by the server's preloads
    before = imported.stat()
    try:
        os.utime(imported, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        job = _train(repo, tmp_path / "run", path, "--set", "max_steps=2")
        _, err = job.communicate(timeout=300)
    finally:
        os.utime(imported, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert job.returncode == 0, err
    assert json.loads((tmp_path / "run" / "record.json").read_text())["timing"]["warm_start"] is False
    assert proc.wait(timeout=15) == 0
    assert "changed since it was imported" in proc.stdout.read()


def test_the_server_ends_with_the_run_that_started_it(repo, tmp_path):
    path = Path(tempfile.mkdtemp(prefix="petl-warm-test-")) / "socket"
    parent = subprocess.Popen(["bash", "-c", f"{petl_bench()} warm-server --socket {path} --parent $$ & "
                                             f"echo $!; sleep 600"], cwd=repo, stdout=subprocess.PIPE, text=True)
    server = int(parent.stdout.readline())
    _until(path.exists, 120, "the warm server did not listen within 120 s")
    parent.kill()
    parent.wait()
    _until(lambda: not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2],
           15, "the server outlived the run that started it")
    assert not path.exists()
    path.parent.rmdir()


def test_snakemake_runs_jobs_warm_and_stops_its_server(repo, tmp_path, shared_data):
    """The workflow starts the server for a local CPU run, every train job forks from it, and nothing is left
    running; `warm_start=false` runs every job cold with the same results."""
    config = tmp_path / "warm.yaml"
    config.write_text(json.dumps({
        "results": str(tmp_path / "results"), "resources": str(tmp_path / "resources"), "threads": 1,
        "tasks": {"bit-xor": {"backbone": "tiny-bert", "options": {"eval_size": 32},
                              "train": {"max_steps": 4, "eval_steps": 2, "batch_size": 8}}},
        "grid": [{"tasks": ["bit-xor"], "methods": ["lora", "fpt"], "seeds": [1]}]}))
    records = {}
    for warm in ("true", "false"):
        done = subprocess.run([snakemake(), "--cores", "2", "--configfile", str(config), "--config",
                               f"warm_start={warm}", "--forceall", "--quiet", "rules"],
                              cwd=repo, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        records[warm] = {p.relative_to(tmp_path).as_posix(): json.loads(p.read_text())
                         for p in (tmp_path / "results" / "runs").rglob("record.json")}
        assert len(records[warm]) == 2
        assert {r["timing"]["warm_start"] for r in records[warm].values()} == {warm == "true"}
    running = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    assert not [line for line in running if "warm-server" in line and "--parent" in line]
    assert records["true"].keys() == records["false"].keys()
    for key, record in records["true"].items():
        assert record["metrics"] == records["false"][key]["metrics"], key


def test_a_server_on_a_machine_with_a_gpu_serves_no_job(repo, tmp_path):
    """A forked child could not use a GPU that the parent's torch has seen: where torch sees one, the server ends
    before it listens, with its own exit status, and the workflow's jobs start cold."""
    path = tmp_path / "s"
    script = ("import sys, torch; torch.cuda.is_available = lambda: True\n"
              "from benchmark.warmstart import serve\n"
              f"serve(__import__('pathlib').Path({str(path)!r}))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == warmstart.CUDA_VISIBLE, done.stderr
    assert "a GPU is visible" in done.stderr and not path.exists()
