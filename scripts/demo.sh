#!/usr/bin/env bash
# The main job (README.md "Run it"): build, then fine-tune the real stories260K model (NF4 base, LoRA r=8 on all
# seven linears) on Tiny Shakespeare (1000 steps: 45 s to two minutes on 2 cores) on the default backend (a GPU
# when there is one, else the CPU backend), showing the loss falling and the validation loss before and after.
# The run directory (demo-run/: PEFT adapter, checkpoints, metrics.jsonl, loss.svg) is kept.
#   POCKETLORA_DATA=DIR     where shared/data is (default ../shared/data)
#   DEMO_BACKEND=cpu|vulkan the backend (default auto); DEMO_STEPS=N the optimizer steps (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS" --target pocketlora
./build/pocketlora --version
./build/pocketlora devices || echo "demo: no Vulkan device; the CPU backend trains"
DATA="${POCKETLORA_DATA:-$(cd .. && pwd)/shared/data}"
MODEL="$DATA/models/stories260K/stories260K.bin"
TEXT="$DATA/datasets/tinyshakespeare_input.txt"
for f in "$MODEL" "$DATA/models/stories260K/tok512.bin" "$TEXT"; do
  if [ ! -f "$f" ]; then
    echo "demo: $f is missing. The demo reads the shared data folder (models/stories260K, datasets/);" >&2
    echo "      point POCKETLORA_DATA at it (default: ../shared/data next to this repository)." >&2
    exit 1
  fi
done
rm -rf demo-run
./build/pocketlora train --model "$MODEL" --data "$TEXT" --backend "${DEMO_BACKEND:-auto}" \
  --rank 8 --alpha 16 --targets all --seq-len 128 --batch 8 --steps "${DEMO_STEPS:-1000}" \
  --lr 2e-3 --warmup 20 --schedule linear --eval-every 100 --val-windows 32 --out demo-run
echo "demo: the loss per step is in demo-run/metrics.jsonl and drawn in demo-run/loss.svg"
