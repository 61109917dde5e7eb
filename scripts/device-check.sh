#!/usr/bin/env bash
# Device check: runs the CUDA path that CI cannot (bf16 autocast, fused AdamW, several jobs sharing one GPU through
# gpu_ids slots, peft beside ours) in at most 6 minutes, and leaves what it measured under $OUT.
#   OUT=/tmp/device-check bash scripts/device-check.sh        (on a machine with one CUDA GPU, from the repo root)
#   STAGES="warm" ...                                          (only some stages: warm, grid, perf; default all)
# Environment: on a machine with PyPI, the lock (requirements/install.sh, keeping the machine's CUDA torch). On an
# offline machine that already has torch, wheels carried in .whl/ (the locked versions of what it lacks) and a
# tokenizer-only copy of the MiniLM package in .device-data/site (tiny backbones borrow its tokenizer).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/device-check}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device-check.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA=${DATA:-../shared/data}
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

stamp "environment"
if [ -d .whl ]; then
  rm -rf /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-build-isolation --target /tmp/site .whl/*.whl . \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD/.device-data/site PATH=/tmp/site/bin:$PATH
  DATA=.device-data
else
  bash requirements/install.sh && . .venv/bin/activate || exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
petl-bench env | tee "$OUT/env.txt"

STAGES=" ${STAGES:-warm grid perf} "
stage() { [[ "$STAGES" == *" $1 "* ]]; }

if stage warm; then
stamp "warm start on a GPU machine: the server must see the GPU through NVML and end before it listens (exit 3)"
rm -f /tmp/petl-warm-check.sock
timeout 120 petl-bench warm-server --socket /tmp/petl-warm-check.sock 2>&1 | tee "$OUT/warm-server.txt"
echo "warm-server exit ${PIPESTATUS[0]} (3: it refused, as it must where a GPU is visible)" | tee -a "$OUT/warm-server.txt"
[ -e /tmp/petl-warm-check.sock ] && echo "FAIL: the socket exists" | tee -a "$OUT/warm-server.txt"
fi

if stage grid; then
stamp "grid slice: $(grep -c '' config/device.yaml) lines of config/device.yaml, 4 jobs at once on GPU 0"
rm -rf results/device
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/gpu-usage.csv" 2>&1 &
SMI=$!
t0=$(date +%s)
timeout 180 snakemake --cores 8 --resources gpu=4 --configfile config/device.yaml --config data_dir="$DATA" \
  --keep-going --quiet rules > "$OUT/snakemake.log" 2>&1
echo "snakemake exit $? after $(( $(date +%s) - t0 )) s"
kill $SMI 2> /dev/null
python3 scripts/device_summary.py results/device | tee "$OUT/grid-summary.txt"
tar czf "$OUT/device-runs.tgz" --exclude 'checkpoint*' --exclude '*.safetensors' results/device 2> /dev/null
fi

if stage perf; then
stamp "perf: roberta-base (random weights, paper architecture), batch 32 x 128 tokens, with peft beside ours"
timeout 240 petl-bench perf --backbones roberta-base --methods full,lora,prefix,adapter-houlsby,mam \
  --batch 32 --seq 128 --steps 10 --warmup 3 --out results/device-perf > "$OUT/perf.log" 2>&1
echo "perf exit $?"
cp results/device-perf/table.md "$OUT/perf-table.md" 2> /dev/null && cat "$OUT/perf-table.md"
fi
stamp "done"
