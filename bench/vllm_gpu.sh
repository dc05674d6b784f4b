#!/usr/bin/env bash
# The embedded model served by vLLM on one GPU, audited through --base-url, next to the
# transformers backend on the same GPU. Prepared for a lent GPU machine; NOT RUN YET (no GPU
# was lent to the sessions that wrote it).
#
# What it records (WORK_DIR/vllm_gpu.tsv, one line per side): requests/s and completion
# tokens/s over the audit's own wall time (summary.json: model_calls / wall_seconds and
# tokens.completion / wall_seconds), for
#   * transformers: sua-audit run --model embedded/smollm2-135m-instruct --device cuda
#   * vllm:         sua-audit run --model openai/smollm2 --base-url http://127.0.0.1:8000/v1
#                   --concurrency 64, against `vllm serve` of the same converted weights
# on the same data set (QA, so sampled answers dominate: ../shared/data/nq_open_dev.jsonl,
# first 200 items, K = 4, 5 samples) with a fresh cache each, so every request is made.
#
# Past one machine: start one `vllm serve` per GPU (or per machine) and give sua-audit every
# replica with --base-url repeated; it spreads requests over them, backs off and fails over per
# endpoint, and checks that all serve the same model (README, "Hosted models").
#
# Usage: bench/vllm_gpu.sh [WORK_DIR]   (needs `pip install vllm` and this package; when $OUT is
# set, as on the device machine, the table and logs are copied there too).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
WORK=${1:-/tmp/vllm-gpu}
DATA=${DATA:-../shared/data/nq_open_dev.jsonl}
mkdir -p "$WORK"
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: no CUDA device visible to torch; this script is for a GPU machine." >&2
  exit 1
fi
"$PY" -c 'import vllm' 2>/dev/null || { echo "error: vllm is not installed (pip install vllm)." >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
MODEL_DIR=$("$PY" -c 'from sua_audit.backends.embedded import ensure_converted; print(ensure_converted())')
COMMON=(--dataset "$DATA" --limit 200 --perturbations 4 --samples 5 --json --no-progress)

"$PY" -m sua_audit run --model embedded/smollm2-135m-instruct --device cuda \
  --cache "$WORK/hf.db" --out "$WORK/hf" "${COMMON[@]}" > "$WORK/hf.json" 2> "$WORK/hf.log"

"$PY" -m vllm.entrypoints.openai.api_server --model "$MODEL_DIR" --served-model-name smollm2 \
  --host 127.0.0.1 --port 8000 > "$WORK/vllm.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:8000/v1/models > /dev/null && break
  sleep 2
done
"$PY" -m sua_audit run --model openai/smollm2 --base-url http://127.0.0.1:8000/v1 --concurrency 64 \
  --cache "$WORK/vllm.db" --out "$WORK/vllm" "${COMMON[@]}" > "$WORK/vllm.json" 2> "$WORK/vllm_run.log"

"$PY" - "$WORK" <<'EOF' | tee "$WORK/vllm_gpu.tsv"
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
print("side\trequests\twall_s\trequests_per_s\tcompletion_tokens_per_s")
for side in ("hf", "vllm"):
    s = json.loads((work / f"{side}.json").read_text())
    wall = s["wall_seconds"]
    print(f"{side}\t{s['model_calls']}\t{wall:.1f}\t{s['model_calls'] / wall:.1f}\t"
          f"{s['tokens']['completion'] / wall:.0f}")
EOF
if [ -n "${OUT:-}" ]; then
  cp "$WORK"/*.tsv "$WORK"/*.log "$OUT/"
fi
