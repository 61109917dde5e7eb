"""The Bit baseline is a real dependency: the dry-run DAG pretrains on Bit Memory before the runs that
transfer it, and only those runs wait for it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def test_bit_pretraining_is_an_input_of_the_bit_runs(tmp_path, repo):
    config = {"results": "out", "tasks": {"bit-xor": {"backbone": "tiny-bert"}},
              "grid": [{"tasks": ["bit-xor"], "methods": ["fpt", "fpt-bit"], "seeds": [1, 2]}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run([str(SNAKEMAKE), "-n", "--cores", "1", "-s", str(repo / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stdout + done.stderr
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", log)
    pretrain = [b for b in blocks if re.match(r"(local)?rule pretrain_bit:", b)]
    trains = [b for b in blocks if re.match(r"(local)?rule train:", b)]
    bit_runs = [b for b in trains if "input:" in b and "backbones/bit-memory" in b]
    plain = [b for b in trains if b not in bit_runs]
    assert len(pretrain) == 1 and "backbones/bit-memory/tiny-bert" in pretrain[0]
    assert len(bit_runs) == 2 and all("input:" in b and "backbones/bit-memory/tiny-bert" in b for b in bit_runs)
    assert {re.search(r"runs/bit-xor/([^/]+)/", b).group(1) for b in bit_runs} == {"fpt-bit"}
    assert len(plain) == 2 and not any("backbones/bit-memory" in b for b in plain)
