"""A backbone without pretrained weights (`gpt2-3layer`, `lstm`) refuses an init that reads trained weights at
planning time, naming the backbone and what would be valid; the `tiny-*` test stand-ins and a backbone given trained
weights through `backbone_path` are accepted."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmark.backbones.fpt import resolve_backbone
from benchmark.backbones.registry import BACKBONES, build_model
from benchmark.config import load_config
from benchmark.errors import ConfigError
from conftest import REPO, snakemake


def grid(backbone: str, method: str, **task: object) -> dict:
    return {"tasks": {"c10": {"task": "cifar10", "backbone": backbone, **task}},
            "grid": [{"tasks": ["c10"], "methods": [method]}]}


@pytest.mark.parametrize("backbone, method, init", [("gpt2-3layer", "fpt", "pretrained"),
                                                    ("gpt2-3layer", "full", "pretrained"),
                                                    ("gpt2-3layer", "fpt-stats", "stats"),
                                                    ("lstm", "full", "pretrained")])
def test_a_backbone_without_weights_refuses_a_pretrained_init_at_planning(backbone: str, method: str,
                                                                          init: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(grid(backbone, method))
    msg = str(e.value)
    assert msg.startswith(f"tasks.c10.backbone with method {method!r} (init {init!r}): backbone {backbone!r} is a "
                          f"random-init config with no pretrained weights")
    assert "use a baseline with init 'random' (e.g. full-scratch, fpt-random)" in msg and "backbone_path" in msg
    if backbone == "gpt2-3layer":
        assert msg.endswith("pick a backbone with weights (gpt2, gpt2-large, gpt2-medium)")


@pytest.mark.parametrize("backbone, method", [("gpt2-3layer", "full-scratch"), ("gpt2-3layer", "fpt-random"),
                                              ("tiny-gpt2", "fpt"), ("tiny-gpt2", "fpt-stats")])
def test_random_inits_and_test_stand_ins_plan(backbone: str, method: str) -> None:
    assert len(load_config(grid(backbone, method)).specs) == 1


def test_trained_weights_in_backbone_path_make_pretrained_valid(tmp_path: Path) -> None:
    assert len(load_config(grid("gpt2-3layer", "fpt", backbone_path=str(tmp_path))).specs) == 1


def test_only_the_tiny_test_models_are_stand_ins() -> None:
    assert {n for n, b in BACKBONES.items() if b.stand_in} == {n for n in BACKBONES if n.startswith("tiny-")}
    assert {n for n, b in BACKBONES.items() if not b.has_weights()} == {"gpt2-3layer", "lstm"}


def test_building_one_directly_refuses_too_but_counting_on_meta_does_not() -> None:
    with pytest.raises(ConfigError, match="build_model: backbone 'lstm' is a random-init config"):
        build_model("lstm")
    assert build_model("gpt2-3layer", meta=True).config.n_layer == 3


def test_the_lstm_baseline_builds_fresh_weights_and_the_vit_baseline_loads_pretrained_ones() -> None:
    cfg = load_config({"tasks": {"bit-xor": {"backbone": "gpt2"}},
                       "grid": [{"tasks": ["bit-xor"], "methods": ["lstm", "vit-init"]}]})
    specs = {s.method_name: s for s in cfg.specs.values()}
    assert resolve_backbone(specs["lstm"].task, specs["lstm"].init) == ("lstm", "random", None)
    assert resolve_backbone(specs["vit-init"].task, specs["vit-init"].init) == ("vit-base", "pretrained", None)


def test_snakemake_stops_before_any_job(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  c10: {task: cifar10, backbone: gpt2-3layer}\ngrid:\n  - tasks: [c10]\n"
                   "    methods: [fpt]\n")
    out = subprocess.run([snakemake(), "-n", "--nolock", "--cores", "1", "--configfile", str(bad), "--config",
                          f"results={tmp_path}/results"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "backbone 'gpt2-3layer' is a random-init config with no pretrained weights" in out.stdout + out.stderr
    assert "Job stats" not in out.stdout  # refused while planning: no job was scheduled
