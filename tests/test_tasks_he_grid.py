"""The paper grid (config/config.yaml) plans every row of He et al. Tables 2-6 and 12 and the Figure 5 curves,
on the paper's backbones, with the paper's seeds — checked on Snakemake's own dry-run plan."""
from __future__ import annotations

import re
import subprocess

import pytest

from benchmark import registry
from benchmark.config import load_config
from conftest import REPO, snakemake

GLUE, GEN = ("mnli", "sst2"), ("xsum", "wmt16-en-ro")
# (paper row, tasks, method, budget) — written from the paper, independently of the config file
ROWS: list[tuple[str, tuple[str, ...], str, str]] = [
    ("T2 full FT", GLUE, "full", "default"), ("T2 BitFit", GLUE, "bitfit", "default"),
    ("T2 prefix 0.5%", GLUE, "prefix", "0.5pct"), ("T2 LoRA 0.5%", GLUE, "lora", "0.5pct"),
    ("T2 adapter 0.5%", GLUE, "adapter-houlsby", "0.5pct"), ("T2 MAM 0.5%", GLUE, "mam-glue", "default"),
    ("T3 SA(attn) r=200", GEN, "sa-attn", "r200"), ("T3 SA(ffn) r=200", GEN, "sa-ffn", "r200"),
    ("T3 PA(attn) r=200", GEN, "pa-attn", "r200"), ("T3 PA(ffn) r=200", GEN, "pa-ffn", "r200"),
    ("T4 PA(attn) r=200", ("wmt16-en-ro",), "pa-attn", "r200"), ("T4 prefix l=200", ("wmt16-en-ro",), "prefix", "l200"),
    ("T4 MH PA r=200", ("wmt16-en-ro",), "mh-pa", "r200"), ("T4 prefix l=30", ("wmt16-en-ro",), "prefix", "l30"),
    ("T4 prefix no gate l=30", ("wmt16-en-ro",), "prefix-nogate", "l30"),
    ("T4 PA(ffn) r=30", ("wmt16-en-ro",), "pa-ffn", "r30"), ("T4 PA(attn) r=30", ("wmt16-en-ro",), "pa-attn", "r30"),
    ("T4 MH PA r=30", ("wmt16-en-ro",), "mh-pa", "r30"),
    ("T5 LoRA s=4", ("xsum",), "lora-ffn", "default"), ("T5 LoRA s=1", ("xsum",), "lora-ffn-s1", "default"),
    ("T5 PA", ("xsum",), "pa-ffn", "r512"), ("T5 scaled PA s=4", ("xsum",), "scaled-pa", "default"),
    ("T5 scaled PA learned s", ("xsum",), "scaled-pa-learned", "default"),
    *[(f"T6 {m}", GEN, m, "default") for m in ("full", "bitfit", "prompt", "prefix", "adapter-pfeiffer", "lora-ffn",
                                               "pa-ffn", "pa-attn+pa-ffn", "prefix+lora-ffn", "mam")],
    ("T12 prefix l=512", GEN, "prefix", "l512"), ("T12 LoRA(attn) r=200", GEN, "lora", "r200"),
    ("T12 SA(attn) r=512", GEN, "sa-attn", "r512"), ("T12 PA(attn) r=512", GEN, "pa-attn", "r512"),
    ("T12 LoRA(ffn) r=102", GEN, "lora-ffn", "default"), ("T12 SA(ffn) r=512", GEN, "sa-ffn", "r512"),
    ("T12 SA(ffn) r=1024", GEN, "sa-ffn", "r1024"), ("T12 PA(ffn) r=512", GEN, "pa-ffn", "r512"),
    ("T12 PA(ffn) r=1024", GEN, "pa-ffn", "r1024"),
    *[(f"F5 prefix l={n}", GEN, "prefix", f"l{n}") for n in (1, 30, 200, 512)],
    *[(f"F5 LoRA(attn) r={n}", GEN, "lora", f"r{n}") for n in (1, 30, 200, 400)],
]
SEEDS = {"mnli": 5, "sst2": 5, "xsum": 3, "wmt16-en-ro": 3}
BACKBONES = {"mnli": "roberta-base", "sst2": "roberta-base", "xsum": "bart-large", "wmt16-en-ro": "mbart-large-cc25"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Snakemake's dry-run plan of the plain `snakemake` (the paper grid)."""
    results = tmp_path_factory.mktemp("paper")
    out = subprocess.run([snakemake(), "-n", "--cores", "all", "--nolock", "--config", f"results={results}"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def planned(dry_run: str) -> set[tuple[str, str, str, int]]:
    """Runs in the paper grid's dry-run plan."""
    found = re.findall(r"runs/([^/\s]+)/([^/\s]+)/([^/\s]+)/[0-9a-f]{12}/(\d+)/record\.json", dry_run)
    return {(t, m, b, int(s)) for t, m, b, s in found}


def test_every_paper_row_is_planned_with_the_papers_seeds(planned: set[tuple[str, str, str, int]]) -> None:
    aliases = {(r.task, r.method, r.budget, r.seed): (p.task, p.method, p.budget, p.seed)
               for r, p in load_config(REPO / "config" / "config.yaml").aliases.items()}
    missing = [(row, t, m, b) for row, tasks, m, b in ROWS for t in tasks
               if not all((t, m, b, s) in planned or aliases.get((t, m, b, s)) in planned
                          for s in range(1, SEEDS[t] + 1))]
    assert not missing, f"paper rows missing from the plan: {missing}"


def test_one_run_named_under_two_budgets_is_planned_once(planned: set[tuple[str, str, str, int]]) -> None:
    """prefix's paper size is l=200 and pa-ffn's r=1024: Tables 4, 12 and Figure 5 name those sizes, Table 6 the
    preset; the `default` run is planned and answers both (the leaderboard matches by resolved sizes)."""
    aliases = load_config(REPO / "config" / "config.yaml").aliases
    assert sorted({(r.task, r.method, r.budget, p.budget) for r, p in aliases.items()}) == [
        ("wmt16-en-ro", "pa-ffn", "r1024", "default"), ("wmt16-en-ro", "prefix", "l200", "default"),
        ("xsum", "pa-ffn", "r1024", "default"), ("xsum", "prefix", "l200", "default")]
    assert {s for r, p in aliases.items() for s in (r.seed, p.seed)} == {1, 2, 3}
    for t in GEN:
        assert {(t, m, b) for t2, m, b, _ in planned if t2 == t and (m, b) in (("prefix", "l200"), ("pa-ffn", "r1024"))
                } == set()
        assert {(t, "prefix", "default", s) for s in (1, 2, 3)} <= planned


def test_each_dataset_is_prepared_once(dry_run: str) -> None:
    """Seven CIFAR-10 instances (six backbones and the 3-layer "Full") read one prepared folder."""
    folders = sorted(set(re.findall(r"output: \S*resources/data/([^/\s]+)/[0-9a-f]{12}", dry_run)))
    assert folders == ["cifar10", "cifar10-lra", "mnist", "mnli", "remote-homology", "sst2", "wmt16-en-ro", "xsum"]
    assert len(re.findall(r"output: \S*resources/data/cifar10/[0-9a-f]{12}", dry_run)) == 1


def test_paper_grid_uses_the_paper_backbones_and_recipes() -> None:
    cfg = load_config(REPO / "config" / "config.yaml")
    for task, backbone in BACKBONES.items():
        settings = cfg.task_spec(task)
        assert settings.backbone == backbone
        assert settings.train == registry.get_task(task).recipe  # no silent override of the paper recipe
    enro = cfg.task_spec("wmt16-en-ro").train
    assert enro["max_tokens"] * enro["grad_accum"] == 16_384 and enro["select_metric"] == "loss"
    xsum = cfg.task_spec("xsum").train
    assert xsum["batch_size"] * xsum["grad_accum"] == 64 and xsum["select_metric"] == "rouge2"


def test_budgets_hit_the_papers_parameter_shares() -> None:
    """The paper's percentages of BART-large (Tables 3-6, 12), counted on a meta-device model with its formula."""
    from benchmark.backbones.registry import build_model
    from benchmark.methods.budget import solve

    cfg = load_config(REPO / "config" / "config.yaml")
    model = build_model("bart-large", "seq2seq", meta=True)
    total = sum(p.numel() for p in model.model.parameters())
    shares = {("mam", "default"): 6.7, ("prefix", "l200"): 3.6, ("pa-ffn", "default"): 12.3,
              ("adapter-pfeiffer", "default"): 7.2, ("lora-ffn", "default"): 6.1, ("lora", "r200"): 7.2,
              ("sa-ffn", "r200"): 2.4}  # Table 4 labels l=30 / r=30 "0.1%", but its own formula gives 0.54%
    for (name, budget), pct in shares.items():
        method, _ = solve(cfg.method(name), budget, lambda m: m.formula(model), total)
        assert 100 * method.formula(model) / total == pytest.approx(pct, abs=0.1), (name, budget)
