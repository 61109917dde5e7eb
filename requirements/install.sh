#!/usr/bin/env bash
# Install petl-bench into a virtual environment from the lock: exactly the dependency set that CI tests.
#   VENV=path   where the environment lives (default .venv; created if missing)
# torch is not in the lock. If the environment already has a torch (a GPU user's CUDA build, installed first),
# it is kept; otherwise the CPU wheel pinned in requirements/torch-cpu.txt is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q --require-hashes --no-deps -r requirements/lock.txt
if torch_version=$(python -c "import torch; print(torch.__version__)" 2> /dev/null); then
  echo "install: keeping the torch already installed ($torch_version)"
else
  pip install -q --require-hashes --no-deps -r requirements/torch-cpu.txt
fi
pip install -q --no-deps --no-build-isolation -e .
pip check   # every installed package's requirements are met by the locked set (torch's included)
echo "install: petl-bench in $VENV from requirements/lock.txt (sha256 $(sha256sum requirements/lock.txt | cut -c1-12))"
