#pragma once
// Offsets for a step's temporary tensors in one arena, from their lifetimes:
// two tensors may share bytes only if their lifetimes (first and last op that
// touches them) do not overlap. Greedy by size (the largest tensor is placed
// first, at the lowest offset that does not collide with an already placed
// tensor of overlapping lifetime), as TensorFlow Lite's arena planner does; the
// result is never below the largest total of simultaneously live bytes and
// usually equal to it.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pocketlora {

struct PlannedTensor {
  std::string name;
  std::uint64_t bytes = 0;
  std::int64_t first = 0, last = 0;  // op indices, inclusive
  // Further [first, last] spans: a tensor used by several programs (the micro-batch and the evaluation both run
  // the forward) is live in each and dead between them, since no value passes from one program to another
  // through a step tensor.
  std::vector<std::pair<std::int64_t, std::int64_t>> also_live;
};

struct MemoryPlan {
  std::vector<std::uint64_t> offsets;  // per tensor, in input order
  std::uint64_t arena_bytes = 0;       // the arena the offsets need
  std::uint64_t live_peak_bytes = 0;   // max over ops of the live tensors' bytes: a lower bound for any plan
};

// `alignment` (a power of two) rounds every offset and size, e.g. the device's
// minStorageBufferOffsetAlignment. `block_bytes` (0: none; else a multiple of
// the alignment): no tensor crosses a multiple of it, so an arena allocated in
// blocks of that size binds every tensor in one block; a larger tensor is a
// DeviceLimitError naming it.
MemoryPlan plan_memory(const std::vector<PlannedTensor>& tensors, std::uint64_t alignment,
                       std::uint64_t block_bytes = 0);

}  // namespace pocketlora
