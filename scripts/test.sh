#!/usr/bin/env bash
# The test suite, exactly as CI runs it (README.md "Run the tests"; .ci/run calls the same command).
#  1. Release build with warnings as errors, Vulkan on; every test runs under the Khronos validation layer on
#     whatever Vulkan device is present (lavapipe on machines without a GPU). POCKETLORA_REQUIRE_GPU=1 turns
#     "no Vulkan device" from a skip into a failure, so GPU tests cannot silently not run.
#     POCKETLORA_REQUIRE_DATA=1 does the same for the files in ../shared/data (both builds).
#  2. ASan + UBSan build of the CPU-only library and tests (parsers fed corrupt files, reference kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
DATA="${POCKETLORA_DATA:-$(cd .. && pwd)/shared/data}"
# POCKETLORA_REQUIRE_DATA=1 turns a missing data file from a skip into a failure (tests/common/test_data.h), so the
# ~30 tests on the real models/tokenizers/datasets cannot drop out of a green run. Set it to 0 to let them skip.
export POCKETLORA_REQUIRE_DATA="${POCKETLORA_REQUIRE_DATA:-1}"
if [ ! -d "$DATA" ] && [ "$POCKETLORA_REQUIRE_DATA" = "1" ]; then
  echo "test.sh: error: shared data folder $DATA not found; point POCKETLORA_DATA at shared/data" \
       "(or set POCKETLORA_REQUIRE_DATA=0 to skip the tests that need it)" >&2
  exit 1
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOCKETLORA_WERROR=ON -DPOCKETLORA_SHARED_DATA="$DATA"
cmake --build build -j"$JOBS"
POCKETLORA_REQUIRE_GPU="${POCKETLORA_REQUIRE_GPU:-1}" ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "${POCKETLORA_SKIP_SANITIZERS:-0}" != "1" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOCKETLORA_WERROR=ON \
        -DPOCKETLORA_SANITIZE=ON -DPOCKETLORA_VULKAN=OFF -DPOCKETLORA_BENCH=OFF -DPOCKETLORA_SHARED_DATA="$DATA"
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi
