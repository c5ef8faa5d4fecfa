#pragma once
// f16 -> f32 for whole rows through a 65536-entry table of half_to_float (host/core/half.h), so bit-identical with
// it: an f16 output head is widened panel by panel on every head matmul (host/ref/matmul.cpp), and the generic
// Tensor::to (a switch and a double per element) or half_to_float's branches cost ~3 ns per weight there, ~4x the
// rest of a Llama-3.2-1B layer's step. The 256 KiB table stays in L2; rows are split on the pool.
#include <cstdint>
#include <vector>

#include "host/core/half.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

inline const float* half_to_float_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (std::uint32_t h = 0; h < t.size(); ++h) t[h] = half_to_float(static_cast<std::uint16_t>(h));
    return t;
  }();
  return table.data();
}

inline void widen_half(const std::uint16_t* src, float* dst, std::int64_t n) {
  const float* table = half_to_float_table();
  parallel_for(n, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) dst[i] = table[src[i]];
  });
}

}  // namespace pocketlora::ref
