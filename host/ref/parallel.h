#pragma once
// Threading of host/ref.
//  - Element-wise loops and reductions use OpenMP (`#pragma omp parallel for ... if (n >= kParallelMinElements)`,
//    host/core/parallel_threshold.h). Only loops whose iterations are
//    independent are parallelised, so results do not depend on the thread count.
//  - GEMM/GEMV blocks (host/ref/blas.h) and the NF4 kernels use parallel_chunks: a persistent pool whose idle
//    workers sleep on a futex (std::atomic::wait), never spin. libgomp's workers spin-wait (~ms) at every barrier
//    unless OMP_WAIT_POLICY=passive, and on a loaded 2-core machine that spinning starves the other pool: measured
//    30 ms instead of 0.35 ms for a 2048x2048 NF4 GEMV right after an sgemm. Starting threads per call instead
//    cost ~20 us each, as much as a small GEMV.
#include <cstdint>
#include <functional>

#include "host/core/parallel_threshold.h"

namespace pocketlora::ref {

// Runs fn(c) for every c in [0, chunks) and waits for all. The caller and whichever of the pool's
// cpu_threads() - 1 workers wake in time claim chunks one at a time, and the caller never waits for a worker that
// has not started: on a loaded machine a sleeping worker may be scheduled milliseconds late, and a static split
// would wait for it. Results are independent of who runs a chunk as long as fn(c) writes only what chunk c owns.
// The pool serves one call at a time: a call made while it is busy (another thread's, or from inside fn) runs its
// chunks on its own caller, so callers on several threads are safe and never oversubscribe the cores. An exception
// from a chunk is rethrown on the caller (the first one). BLAS may be called inside fn: OpenBLAS runs
// single-threaded in this backend (host/ref/blas.h), and a gemm inside a chunk finds the pool busy and runs on the
// chunk's own thread.
void parallel_chunks(std::int64_t chunks, const std::function<void(std::int64_t chunk)>& fn);

// Runs fn(begin, end) over the items [0, n) split into contiguous ranges on the pool (parallel_chunks), for loops
// whose items are independent (each writes only what it owns), so the result does not depend on the split.
// item_cost (elements touched per item) keeps work under kParallelMinElements on the caller alone: the CPU
// backend's element-wise kernels use this instead of OpenMP, whose workers spin at every barrier.
void parallel_for(std::int64_t n, std::int64_t item_cost,
                  const std::function<void(std::int64_t begin, std::int64_t end)>& fn);

}  // namespace pocketlora::ref
