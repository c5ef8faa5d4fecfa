#!/usr/bin/env bash
# The main job (README.md "Run it"). Until the training engine lands this is: build, list the Vulkan devices,
# verify the GPU GEMM against Eigen under the validation layer, and benchmark GEMM (table + bench-gemm.json).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS" --target pocketlora
./build/pocketlora --version
./build/pocketlora devices
POCKETLORA_VALIDATION=1 ./build/pocketlora check
./build/pocketlora bench gemm --shapes "1,1024,1024;16,1024,1024;128,1024,1024;128,2048,2048" --reps 3 \
  --out bench-gemm.json
