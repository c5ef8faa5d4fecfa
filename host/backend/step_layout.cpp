#include "host/backend/step_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "host/core/error.h"

namespace pocketlora {

std::vector<std::uint64_t> StepLayout::block_sizes() const {
  std::vector<std::uint64_t> out;
  if (arena_bytes == 0) return out;
  const std::uint64_t block = limits.block_bytes ? limits.block_bytes : arena_bytes;
  for (std::uint64_t at = 0; at < arena_bytes; at += block) out.push_back(std::min(block, arena_bytes - at));
  return out;
}

void check_step_layout(const StepLayout& l, const StepArenaLimits& be, const std::string& who) {
  if (be.alignment == 0 || l.limits.alignment % be.alignment != 0)
    throw InvalidArgument(
        fmt::format("{}: step layout planned for {}-byte alignment, the backend needs multiples of {}", who,
                    l.limits.alignment, be.alignment));
  if (be.block_bytes != 0 && (l.limits.block_bytes == 0 || l.limits.block_bytes > be.block_bytes))
    throw InvalidArgument(fmt::format("{}: step layout planned for blocks of {} bytes, the backend binds at most {}",
                                      who, l.limits.block_bytes == 0 ? l.arena_bytes : l.limits.block_bytes,
                                      be.block_bytes));
  if (l.limits.block_bytes % l.limits.alignment != 0)
    throw InvalidArgument(fmt::format("{}: step layout blocks of {} bytes are not a multiple of its alignment {}", who,
                                      l.limits.block_bytes, l.limits.alignment));
  for (const auto& t : l.tensors) {
    const std::uint64_t end = t.offset + std::max<std::uint64_t>(t.bytes(), 1);
    const std::uint64_t block = l.limits.block_bytes;
    if (t.offset % l.limits.alignment != 0 || end > l.arena_bytes ||
        (block != 0 && t.offset / block != (end - 1) / block))
      throw InvalidArgument(fmt::format(
          "{}: step layout places '{}' {} {} at bytes [{}, {}), not aligned to {}, outside the {}-byte arena or "
          "across a {}-byte block",
          who, t.name, shape_str(t.shape), dtype_name(t.dtype), t.offset, end, l.limits.alignment, l.arena_bytes,
          block));
  }
}

void StepPlacer::reserve(const StepLayout& layout, const StepArenaLimits& backend, const std::string& who) {
  if (layout_)
    throw InvalidArgument(who + ": reserve_step() twice without free_step() (a step layout is already reserved)");
  check_step_layout(layout, backend, who);
  layout_ = layout;
  who_ = who;
  next_ = 0;
}

std::optional<StepLayoutTensor> StepPlacer::place(const std::string& name, const Shape& shape, DType dtype) {
  if (!layout_ || next_ == layout_->tensors.size()) return std::nullopt;
  const StepLayoutTensor& want = layout_->tensors[next_];
  if (want.name != name || want.shape != shape || want.dtype != dtype)
    throw InvalidArgument(fmt::format(
        "{}: step allocation #{} is '{}' {} {}, the reserved step layout has '{}' {} {} there (was the step recorded "
        "differently from its plan?)",
        who_, next_, name, shape_str(shape), dtype_name(dtype), want.name, shape_str(want.shape),
        dtype_name(want.dtype)));
  ++next_;
  return want;
}

void refuse_unplanned_host_write(const std::string& who, const std::string& name) {
  throw InvalidArgument(fmt::format(
      "{}: host write to step tensor '{}', which the step layout places in bytes it shares with other tensors "
      "because the plan did not see the host write it (record the write on the planning backend too)",
      who, name));
}

}  // namespace pocketlora
