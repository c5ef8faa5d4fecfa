#!/usr/bin/env bash
# The main job (README.md "Run it"). Until the training engine lands this is: build, list the Vulkan devices,
# verify the GPU GEMM against Eigen under the validation layer, run the real stories260K model (NF4 base) forward
# on the CPU and the Vulkan backend, and benchmark GEMM (table + bench-gemm.json).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS" --target pocketlora
./build/pocketlora --version
./build/pocketlora devices
POCKETLORA_VALIDATION=1 ./build/pocketlora check
DATA="${POCKETLORA_DATA:-$(cd .. && pwd)/shared/data}"
if [ -d "$DATA/models/stories260K" ]; then
  for backend in cpu vulkan; do
    ./build/pocketlora forward --backend "$backend" --quant nf4 --top-k 3 \
      --model "$DATA/models/stories260K/stories260K.bin" --tokenizer "$DATA/models/stories260K/tok512.bin" \
      --prompt "Once upon a time, there was a little"
  done
else
  echo "demo: $DATA/models/stories260K not found; skipping the model forward"
fi
./build/pocketlora bench gemm --shapes "1,1024,1024;16,1024,1024;128,1024,1024;128,2048,2048" --reps 3 \
  --out bench-gemm.json
