#pragma once
// Where a backend puts a step's tensors, decided before any is allocated: the step is recorded once on a
// PlanningBackend (host/train/planning_backend.h), which learns every Step tensor's lifetime and packs them into
// one arena with bytes reused by tensors whose lifetimes do not overlap (host/train/memory_plan.h); the real
// backend is then handed that layout (Backend::reserve_step) and places each Step allocation at its offset.
//
// Allocations are matched to the layout by order, and each is checked by name, shape and dtype: a step recorded
// differently from its plan is an error at the first differing allocation, not two live tensors sharing bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora {

// What a backend can bind: every offset a multiple of `alignment` (a power of two: the device's
// minStorageBufferOffsetAlignment on Vulkan), and no tensor crossing a multiple of `block_bytes` (the largest
// buffer the device binds or allocates at once; 0: one block of any size, as on the CPU).
struct StepArenaLimits {
  std::uint64_t alignment = 256;
  std::uint64_t block_bytes = 0;
};

struct StepLayoutTensor {
  std::string name;
  Shape shape;
  DType dtype = DType::F32;
  std::uint64_t offset = 0;  // bytes from the start of the arena
  // The plan saw the host write it (between runs: it lives through the whole step). A host write to a placed
  // tensor without this would land on bytes the plan gave to others meanwhile: the backends refuse it.
  bool host_written = false;
  std::uint64_t bytes() const { return static_cast<std::uint64_t>(shape_numel(shape)) * dtype_size(dtype); }
};

struct StepLayout {
  StepArenaLimits limits;                 // the limits the offsets were planned for
  std::uint64_t arena_bytes = 0;          // the arena the offsets need
  std::vector<StepLayoutTensor> tensors;  // every Step allocation of the step, in allocation order
  std::uint64_t op_scratch_bytes = 0;     // the largest op's own scratch (Backend::*_scratch_bytes), beside the arena
  // The arena in blocks of limits.block_bytes (the last one shorter): what a backend allocates.
  std::vector<std::uint64_t> block_sizes() const;
};

// InvalidArgument naming the tensor, unless every offset is aligned for `backend` (a multiple of its alignment),
// inside the arena, and inside one of the layout's blocks, and the layout's blocks fit `backend`'s.
void check_step_layout(const StepLayout& layout, const StepArenaLimits& backend, const std::string& who);

// InvalidArgument naming `who` and the tensor: a host write to a placed step tensor the plan did not see written.
void refuse_unplanned_host_write(const std::string& who, const std::string& name);

// A backend's side of a reserved layout: hands out the planned offset of each Step allocation in turn.
class StepPlacer {
 public:
  void reserve(const StepLayout& layout, const StepArenaLimits& backend, const std::string& who);
  void clear() {
    layout_.reset();
    next_ = 0;
  }
  bool reserved() const { return layout_.has_value(); }
  const StepLayout& layout() const { return *layout_; }
  // The planned place of this Step allocation; nullopt when nothing is reserved or every planned tensor is placed
  // (the backend allocates it outside the arena). InvalidArgument naming both when it is not the planned one.
  std::optional<StepLayoutTensor> place(const std::string& name, const Shape& shape, DType dtype);

 private:
  std::optional<StepLayout> layout_;
  std::string who_;
  std::size_t next_ = 0;
};

}  // namespace pocketlora
