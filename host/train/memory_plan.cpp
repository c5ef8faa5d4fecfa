#include "host/train/memory_plan.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "host/core/error.h"

namespace pocketlora {

namespace {
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }
}  // namespace

MemoryPlan plan_memory(const std::vector<PlannedTensor>& tensors, std::uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw InvalidArgument("plan_memory: alignment " + std::to_string(alignment) + " is not a power of two");
  for (const auto& t : tensors)
    if (t.last < t.first)
      throw InvalidArgument("plan_memory: tensor '" + t.name + "' ends (op " + std::to_string(t.last) +
                            ") before it starts (op " + std::to_string(t.first) + ")");
  MemoryPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier start, then input order, so the plan is
  // deterministic.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (tensors[a].bytes != tensors[b].bytes) return tensors[a].bytes > tensors[b].bytes;
    return tensors[a].first < tensors[b].first;
  });
  std::vector<std::size_t> placed;
  for (std::size_t i : order) {
    const PlannedTensor& t = tensors[i];
    const std::uint64_t size = round_up(std::max<std::uint64_t>(t.bytes, 1), alignment);
    // Byte ranges of placed tensors whose lifetimes overlap this one, by
    // offset.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> busy;
    for (std::size_t p : placed) {
      const PlannedTensor& o = tensors[p];
      if (o.first <= t.last && t.first <= o.last)
        busy.emplace_back(plan.offsets[p], plan.offsets[p] + round_up(std::max<std::uint64_t>(o.bytes, 1), alignment));
    }
    std::sort(busy.begin(), busy.end());
    std::uint64_t offset = 0;
    for (const auto& [b, e] : busy) {
      if (offset + size <= b) break;  // fits in the gap before this range
      offset = std::max(offset, e);
    }
    plan.offsets[i] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(i);
  }
  // Live peak: sweep the op indices where lifetimes start and end.
  std::map<std::int64_t, std::int64_t> delta;
  for (const auto& t : tensors) {
    const auto size = static_cast<std::int64_t>(round_up(std::max<std::uint64_t>(t.bytes, 1), alignment));
    delta[t.first] += size;
    delta[t.last + 1] -= size;
  }
  std::int64_t live = 0;
  for (const auto& [op, d] : delta) {
    live += d;
    plan.live_peak_bytes = std::max(plan.live_peak_bytes, static_cast<std::uint64_t>(live));
  }
  return plan;
}

}  // namespace pocketlora
