#!/usr/bin/env bash
# Re-resolve requirements/lock.txt from pyproject.toml (the one command to upgrade dependencies).
# Then run `bash .ci/run` in a fresh clone: the test suite is the gate for an upgrade.
# torch is left out of the lock (its own requirements are in): the CPU wheel or a GPU user's CUDA build goes beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv > /dev/null || pip install -q "uv>=0.9"
uv pip compile pyproject.toml requirements/torch-deps.in --extra test \
  --universal --python-version 3.11 --generate-hashes \
  --constraint requirements/constraints.in \
  --override requirements/no-torch.txt --no-emit-package torch \
  --custom-compile-command "bash requirements/lock.sh" \
  ${UPGRADE:+--upgrade} -o requirements/lock.txt "$@"
sha256sum requirements/lock.txt
