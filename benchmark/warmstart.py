"""Warm starts: a local Snakemake run pays for importing torch and transformers once, not once per job.

Importing them costs ~3.5 s of CPU, most of a short job's fixed cost (and of a rehearsal's 570 jobs). The workflow
starts one server (`petl-bench warm-server`) that imports them and then waits on a Unix socket; each
`petl-bench train` that finds the server's socket in $PETL_BENCH_WARM hands over its arguments, working folder,
environment and standard streams, and the server forks a child that runs the command exactly as the job's own
process would (fresh argument parsing, the job's environment, its own seeds). The job's process stays as a proxy:
it waits for the child's exit status, passes SIGTERM/SIGINT/SIGHUP on to it, and the child ends itself if the
proxy dies (a killed Snakemake, a SIGKILL). Without a server, or if it cannot take the job, the command runs in
its own process as always. CPU only: CUDA must not be initialised before a fork, so the server does not serve on a
machine where torch sees a GPU, and configs that assign GPUs (`gpu_ids`) never start one.
"""
from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ENV = "PETL_BENCH_WARM"
# What every train job imports first and the server imports once: torch, transformers' model base, its lazy index
# of model classes (reading it scans the models folder), and the harness modules that import them.
PRELOAD = ("torch", "transformers.modeling_utils", "transformers.models.auto.modeling_auto",
           "benchmark.config", "benchmark.backbones.registry")
_HEADER = 8  # bytes of a request's length prefix
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CUDA_VISIBLE = 3  # the server's exit status when it will not serve: this machine has a GPU
FORKED = False  # True in a job's process forked by the server (its record's timing says so)

# --- the workflow's side -------------------------------------------------------------------------------------------

# What Snakemake sets in each job's environment to its thread count; libraries read some of them once, at import.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def start(log_file: Path, threads: int, timeout_s: float = 120.0) -> subprocess.Popen | None:
    """Start a warm server for the jobs this process starts (sets $PETL_BENCH_WARM, which they inherit) and wait
    until it listens; it stops when this process exits. `threads`: the jobs' thread count, which the server's imports
    see as theirs do. None, with a warning, if it did not come up: the jobs then start cold, as without one."""
    program = shutil.which("petl-bench")  # the program the jobs run: the server must be the same installation
    if program is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="petl-warm-"))  # short: a Unix socket's path holds ~100 bytes
    path = folder / "socket"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        server = subprocess.Popen([program, "warm-server", "--socket", str(path), "--parent", str(os.getpid())],
                                  env={**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(threads))},
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # a Ctrl-C reaches each job once, through its proxy
    atexit.register(stop, server, folder)
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            why = ("a GPU is visible (CUDA does not survive a fork)" if server.poll() == CUDA_VISIBLE else
                   f"the warm server did not start (see {log_file})")
            print(f"petl-bench: {why}; every train job imports torch itself", file=sys.stderr)
            stop(server, folder)
            return None
        time.sleep(0.1)
    os.environ[ENV] = str(path)
    return server


def stop(server: subprocess.Popen, folder: Path) -> None:
    if os.environ.get(ENV, "").startswith(str(folder)):
        del os.environ[ENV]
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    shutil.rmtree(folder, ignore_errors=True)


# --- the job's side -------------------------------------------------------------------------------------------------

def run_warm(argv: list[str]) -> int | None:
    """Run `petl-bench argv` in a child of the warm server named by $PETL_BENCH_WARM and return its exit status;
    None when there is no server or it did not start a child (nothing has run: the caller runs the command)."""
    path = os.environ.get(ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        body = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [len(body).to_bytes(_HEADER, "big") + body], [0, 1, 2])
        replies = conn.makefile("r", encoding="utf-8")
        first = replies.readline()
    except OSError:
        conn.close()
        return None
    if not first.startswith("pid "):
        conn.close()
        return None
    child = int(first.split()[1])
    forwarded: list[int] = []
    previous = {sig: signal.signal(sig, _forward_to(child, forwarded)) for sig in _FORWARDED}
    try:
        last = replies.readline()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        conn.close()
    kind, _, value = last.partition(" ")
    if kind == "exit":
        return int(value)
    if kind == "signal" or forwarded:  # end as the job's own process would have: by the same signal
        sig = int(value) if kind == "signal" else forwarded[-1]
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    print(f"petl-bench: the job's warm-started process {child} ended without an exit status; its log has what it "
          f"did", file=sys.stderr)
    return 1


def _forward_to(child: int, forwarded: list[int]) -> Callable[[int, Any], None]:
    def forward(sig: int, _frame: Any) -> None:
        forwarded.append(sig)
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass
    return forward


# --- the server's side ----------------------------------------------------------------------------------------------

def serve(path: Path, parent: int | None = None, preload: tuple[str, ...] = PRELOAD) -> None:
    """Import `preload`, listen on `path`, fork a child per request; return when the process `parent` (the
    Snakemake run that started the server) is gone. The socket appears only once the imports are done."""
    if _cuda_visible():
        print("warm server: a GPU is visible; a job forked from a process that loaded torch could not use it "
              "safely, so every job starts in its own process", file=sys.stderr, flush=True)
        sys.exit(CUDA_VISIBLE)
    for name in preload:
        importlib.import_module(name)
    import torch

    if torch.cuda.is_initialized():  # a preloaded module touched CUDA: children could not use it
        raise RuntimeError("CUDA was initialised while preloading; a warm server serves CPU jobs only")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped: remove the socket on the way out
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(128)
    listener.settimeout(1.0)
    jobs: dict[int, socket.socket] = {}  # each child's connection, to report how it ended if it could not
    loaded = _module_files()
    try:
        while parent is None or os.getppid() == parent:
            _reap(jobs)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            changed = _changed(loaded)
            if changed:  # code edited or reinstalled since the imports: a child would run the old code
                print(f"warm server: {changed} changed since it was imported; stopping, jobs start cold from now on",
                      file=sys.stderr, flush=True)
                conn.sendall(b"stale\n")
                conn.close()
                return
            pid = _fork_child(listener, conn, jobs)
            if pid:
                jobs[pid] = conn
    finally:
        listener.close()
        path.unlink(missing_ok=True)


def _module_files() -> dict[str, tuple[int, int]]:
    """Every imported module's file with its modification time and size."""
    files = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if name:
            try:
                stat = os.stat(name)
            except OSError:
                continue
            files[name] = (stat.st_mtime_ns, stat.st_size)
    return files


def _changed(loaded: dict[str, tuple[int, int]]) -> str | None:
    """The first imported file that is no longer what was imported, if any."""
    for name, (mtime, size) in loaded.items():
        try:
            stat = os.stat(name)
        except OSError:
            return name
        if (stat.st_mtime_ns, stat.st_size) != (mtime, size):
            return name
    return None


def _cuda_visible() -> bool:
    """Whether torch sees a GPU, asked through NVML, which (unlike the CUDA runtime) leaves a later fork safe."""
    saved = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    try:
        import torch

        return bool(torch.cuda.is_available())
    finally:
        if saved is None:
            del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
        else:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = saved


def _reap(jobs: dict[int, socket.socket]) -> None:
    """Collect ended children; tell a killed child's job which signal ended it (a child that exited has said so)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        conn = jobs.pop(pid, None)
        if conn is None:
            continue
        if os.WIFSIGNALED(status):
            try:
                conn.sendall(f"signal {os.WTERMSIG(status)}\n".encode())
            except OSError:
                pass
        conn.close()


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    while len(data) < _HEADER or len(data) < _HEADER + int.from_bytes(data[:_HEADER], "big"):
        more = conn.recv(1 << 16)
        if not more:
            raise ConnectionError("the job closed its connection before sending its request")
        data += more
    return json.loads(data[_HEADER:]), list(fds)


def _fork_child(listener: socket.socket, conn: socket.socket, jobs: dict[int, socket.socket]) -> int | None:
    """Receive one request and fork its child (returns its id); a malformed request closes the connection, and the
    job then runs in its own process."""
    try:
        request, fds = _receive(conn)
    except (OSError, ValueError, ConnectionError) as e:
        print(f"warm server: dropped a request: {e}", file=sys.stderr, flush=True)
        conn.close()
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        listener.close()
        for other in jobs.values():
            other.close()
        os._exit(_child(conn, request, fds))
    for fd in fds:
        os.close(fd)
    return pid


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> int:
    """Become the job's process (its streams, folder, environment and arguments), run the command, report the exit
    status. Returns it for os._exit, so nothing of the server's (atexit hooks, the listener) runs in the child."""
    global FORKED
    FORKED, code = True, 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a cold process: a KeyboardInterrupt
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(ENV, None)  # a command this child starts runs in its own process
        tempfile.tempdir = None  # found again from the job's TMPDIR
        _fresh_entropy()
        sys.argv = ["petl-bench", *request["argv"]]
        conn.sendall(f"pid {os.getpid()}\n".encode())
        threading.Thread(target=_end_with, args=(conn,), daemon=True).start()
        from benchmark.cli import main

        code = main(request["argv"], lean=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # what an uncaught exception (a KeyboardInterrupt too) does to a cold job: traceback, 1
        traceback.print_exc()
        code = 1
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall(f"exit {code}\n".encode())
        except OSError:
            pass
    return code


def _fresh_entropy() -> None:
    """A cold process starts Python's and NumPy's global generators from fresh entropy; forked children would all
    share the server's state. Runs seed what they use; this keeps anything unseeded as it is in a cold process."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _end_with(conn: socket.socket) -> None:
    """The job's proxy never writes: end of file means it died, and its job must not outlive it."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
