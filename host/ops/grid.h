#pragma once
// Workgroup counts for 1-D work of `n` invocations, folded into 2-D when it exceeds the per-dimension limit
// (shaders recover the index as x + y * num_groups_x * local_size_x).
#include <algorithm>
#include <array>
#include <cstdint>

#include "runtime/device.h"

namespace pocketlora::ops {

inline std::array<std::uint32_t, 3> grid_1d(const vk::Device& dev, std::uint64_t n, std::uint32_t wg) {
  const std::uint64_t groups = std::max<std::uint64_t>(1, (n + wg - 1) / wg);
  const std::uint64_t max_x = dev.caps().max_workgroup_count[0];
  const auto gx = static_cast<std::uint32_t>(std::min(groups, max_x));
  return {gx, static_cast<std::uint32_t>((groups + gx - 1) / gx), 1};
}

}  // namespace pocketlora::ops
