#pragma once
// When host/ref's element-wise loops and reductions go to the OpenMP pool: below this many elements waking the
// threads costs more than the loop (tens of microseconds on 2 cores). Only loops whose iterations are independent
// are parallelised, so results do not depend on the thread count.
#include <cstdint>

namespace pocketlora::ref {

constexpr std::int64_t kParallelMinElements = 1 << 15;

}  // namespace pocketlora::ref
