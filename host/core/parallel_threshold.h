#pragma once
// Below this many elements an element-wise loop or conversion runs on one thread: waking the OpenMP team costs
// more than the loop. Shared by Tensor conversions (host/core) and the CPU backend's loops (host/ref/parallel.h).
#include <cstdint>

namespace pocketlora {

constexpr std::int64_t kParallelMinElements = 1 << 15;

}  // namespace pocketlora
