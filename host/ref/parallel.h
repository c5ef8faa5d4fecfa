#pragma once
// Threading of host/ref.
//  - Element-wise loops and reductions use OpenMP (`#pragma omp parallel for ... if (n >= kParallelMinElements)`):
//    below that many elements waking the threads costs more than the loop. Only loops whose iterations are
//    independent are parallelised, so results do not depend on the thread count.
//  - Kernels that run between OpenBLAS calls (the NF4 GEMV) use run_on_threads: plain threads joined by a blocking
//    wait. libgomp's workers spin-wait (~ms) at every barrier unless OMP_WAIT_POLICY=passive, and on a loaded
//    2-core machine that spinning starves the other pool: measured 30 ms instead of 0.35 ms for a 2048x2048 NF4
//    GEMV right after an sgemm.
#include <cstdint>
#include <functional>

namespace pocketlora::ref {

constexpr std::int64_t kParallelMinElements = 1 << 15;

// Runs fn(t, threads) for t in [0, threads) on `threads` threads (t = 0 on the caller) and waits for all.
// Exceptions from any thread are rethrown on the caller (the first one).
void run_on_threads(int threads, const std::function<void(int t, int threads)>& fn);

}  // namespace pocketlora::ref
