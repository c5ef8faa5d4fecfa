#!/usr/bin/env bash
# Coverage-guided fuzzing of the file parsers (docs/FUZZING.md).
#   bash scripts/fuzz.sh FORMAT SECONDS     FORMAT: one target (below) or `all`
# Configures build-fuzz with clang-14 (libFuzzer + ASan + UBSan, CPU-only library), builds the targets, builds
# the seed corpus from the real files in ../shared/data (or $POCKETLORA_DATA), runs each target for SECONDS and
# prints its executions and crashes. Reproducers are kept in build-fuzz/crashes/FORMAT/; the growing corpus in
# build-fuzz/corpus/FORMAT/ is reused by the next run.  JOBS (default 2) caps the build's parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(safetensors gguf llama2c bnb4bit hf_config spm_model tokenizer_bin tokenizer_json gguf_vocab dataset)
usage() { echo "usage: $0 {$(IFS='|'; echo "${TARGETS[*]}")|all} SECONDS" >&2; exit 2; }
[ $# -eq 2 ] || usage
FORMAT="$1"
SECONDS_EACH="$2"
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || usage
if [ "$FORMAT" = all ]; then RUN=("${TARGETS[@]}"); else
  [[ " ${TARGETS[*]} " == *" $FORMAT "* ]] || usage
  RUN=("$FORMAT")
fi
DATA="${POCKETLORA_DATA:-$(cd .. && pwd)/shared/data}"
[ -d "$DATA" ] || { echo "fuzz.sh: $DATA not found (set POCKETLORA_DATA); the seed corpus is built from it" >&2; exit 1; }
CLANG="${CLANG:-clang++-14}"
command -v "$CLANG" > /dev/null || CLANG=clang++
LAUNCHER=()
command -v ccache > /dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CLANG" \
      -DCMAKE_C_COMPILER="${CLANG/++/}" -DPOCKETLORA_FUZZ=ON -DPOCKETLORA_WERROR=ON -DPOCKETLORA_TESTS=OFF \
      -DPOCKETLORA_BENCH=OFF "${LAUNCHER[@]}" > /dev/null
cmake --build build-fuzz -j"${JOBS:-2}" --target pocketlora_fuzz_seeds "${RUN[@]/#/fuzz_}"

# Seeds are rebuilt when the seed maker changed (parsing the 9 MB tokenizer.json under ASan takes a while);
# corpus/ keeps what earlier runs discovered.
if [ ! -f build-fuzz/seeds/.done ] || [ build-fuzz/fuzz/pocketlora_fuzz_seeds -nt build-fuzz/seeds/.done ]; then
  rm -rf build-fuzz/seeds
  ASAN_OPTIONS=detect_leaks=0 build-fuzz/fuzz/pocketlora_fuzz_seeds "$DATA" build-fuzz/seeds
  touch build-fuzz/seeds/.done
fi

dict_of() {
  case "$1" in
    gguf_vocab) echo fuzz/dict/gguf.dict ;;
    *) [ -f "fuzz/dict/$1.dict" ] && echo "fuzz/dict/$1.dict" ;;
  esac
  return 0
}

status=0
printf '%-15s %8s %10s %8s %8s\n' target seconds execs exec/s crashes > build-fuzz/fuzz-summary.txt
for t in "${RUN[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
  dict="$(dict_of "$t")"
  log="build-fuzz/fuzz-$t.log"
  echo "== fuzz_$t for ${SECONDS_EACH}s (log: $log)"
  # Out-of-memory and timeouts are findings too (a hostile size field): -rss_limit_mb / -timeout keep them fast.
  set +e
  POCKETLORA_DATA="$DATA" ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "build-fuzz/fuzz/fuzz_$t" "build-fuzz/corpus/$t" "build-fuzz/seeds/$t" \
      ${dict:+-dict="$dict"} -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/crashes/$t/" -print_final_stats=1 > "$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(find "build-fuzz/crashes/$t" -type f | wc -l)
  printf '%-15s %8s %10s %8s %8s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "${speed:-?}" "$crashes" >> build-fuzz/fuzz-summary.txt
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "   fuzz_$t stopped with a finding (exit $rc):"
    grep -m3 -E 'ERROR: |fuzz: |runtime error|Test unit written' "$log" | sed 's/^/   /'
  fi
done
cat build-fuzz/fuzz-summary.txt
exit "$status"
