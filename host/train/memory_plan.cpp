#include "host/train/memory_plan.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "host/core/error.h"

namespace pocketlora {

namespace {
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

using Span = std::pair<std::int64_t, std::int64_t>;
std::vector<Span> spans(const PlannedTensor& t) {
  std::vector<Span> s{{t.first, t.last}};
  s.insert(s.end(), t.also_live.begin(), t.also_live.end());
  return s;
}

bool live_together(const std::vector<Span>& a, const std::vector<Span>& b) {
  for (const auto& [af, al] : a)
    for (const auto& [bf, bl] : b)
      if (af <= bl && bf <= al) return true;
  return false;
}
}  // namespace

MemoryPlan plan_memory(const std::vector<PlannedTensor>& tensors, std::uint64_t alignment, std::uint64_t block_bytes) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw InvalidArgument("plan_memory: alignment " + std::to_string(alignment) + " is not a power of two");
  if (block_bytes % alignment != 0)
    throw InvalidArgument("plan_memory: block of " + std::to_string(block_bytes) +
                          " bytes is not a multiple of the alignment " + std::to_string(alignment));
  std::vector<std::vector<Span>> live(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const PlannedTensor& t = tensors[i];
    live[i] = spans(t);
    for (const auto& [first, last] : live[i])
      if (last < first)
        throw InvalidArgument("plan_memory: tensor '" + t.name + "' ends (op " + std::to_string(last) +
                              ") before it starts (op " + std::to_string(first) + ")");
    if (block_bytes != 0 && t.bytes > block_bytes)
      throw DeviceLimitError("plan_memory: tensor '" + t.name + "' needs " + std::to_string(t.bytes) +
                             " bytes in one binding, above the device's block of " + std::to_string(block_bytes));
  }
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
    // A start whose range would cross a block boundary moves to that boundary.
    auto in_one_block = [&](std::uint64_t offset) {
      if (block_bytes == 0 || offset / block_bytes == (offset + size - 1) / block_bytes) return offset;
      return (offset / block_bytes + 1) * block_bytes;
    };
    // Byte ranges of placed tensors whose lifetimes overlap this one, by
    // offset.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> busy;
    for (std::size_t p : placed)
      if (live_together(live[i], live[p]))
        busy.emplace_back(plan.offsets[p],
                          plan.offsets[p] + round_up(std::max<std::uint64_t>(tensors[p].bytes, 1), alignment));
    std::sort(busy.begin(), busy.end());
    std::uint64_t offset = in_one_block(0);
    for (const auto& [b, e] : busy) {
      if (offset + size <= b) break;  // fits in the gap before this range
      if (e > offset) offset = in_one_block(e);
    }
    plan.offsets[i] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(i);
  }
  // Live peak: sweep the op indices where lifetimes start and end.
  std::map<std::int64_t, std::int64_t> delta;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto size = static_cast<std::int64_t>(round_up(std::max<std::uint64_t>(tensors[i].bytes, 1), alignment));
    for (const auto& [first, last] : live[i]) {
      delta[first] += size;
      delta[last + 1] -= size;
    }
  }
  std::int64_t live_bytes = 0;
  for (const auto& [op, d] : delta) {
    live_bytes += d;
    plan.live_peak_bytes = std::max(plan.live_peak_bytes, static_cast<std::uint64_t>(live_bytes));
  }
  return plan;
}

}  // namespace pocketlora
