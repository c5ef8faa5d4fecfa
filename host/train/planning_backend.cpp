#include "host/train/planning_backend.h"

#include <algorithm>
#include <tuple>

#include "host/core/error.h"
#include "host/core/nf4_quantize.h"

namespace pocketlora {

PlanningBackend::Entry& PlanningBackend::entry(const BTensor& t) {
  if (t.id == 0 || t.id > entries_.size())
    throw InvalidArgument("planning backend: tensor handle " + std::to_string(t.id) + " does not exist");
  return entries_[t.id - 1];
}

BTensor PlanningBackend::alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) {
  const auto bytes = static_cast<std::uint64_t>(shape_numel(shape)) * dtype_size(dtype);
  const auto id = static_cast<std::uint32_t>(entries_.size() + 1);
  Entry e;
  e.name = name;
  e.bytes = bytes;
  e.life = life;
  e.base = id;
  e.made = op_;
  e.shape = shape;
  e.dtype = dtype;
  entries_.push_back(std::move(e));
  if (life == Lifetime::Weights) resident_bytes_ += held(bytes);
  return {id, shape, dtype};
}

// As the backend holds them. In an arena (resident_alignment): each part padded to whole words (the kernels read
// words) and aligned; double quantization: codes, 8-bit absmax, nested f32 scales and the 256-entry code map, else
// codes, f32 absmax and two one-word placeholders for the unused double-quant bindings. Else the exact bytes of
// the codes and the (8-bit and nested, or f32) absmax.
// Sized from the shape and the double-quant flag alone (what a real backend uploads for them), so the planner
// needs no values: a deferred linear (BaseLinear::make) is planned without being converted.
BNf4 PlanningBackend::upload_nf4(const Nf4Quantized& w, const std::string& name) {
  const auto n = static_cast<std::uint64_t>(shape_numel(w.shape));
  constexpr auto block = static_cast<std::uint64_t>(kNf4BlockSize), nest = static_cast<std::uint64_t>(kNf4NestedBlockSize);
  const std::uint64_t codes = (n + 1) / 2, blocks = (n + block - 1) / block;
  const std::uint64_t nested = (blocks + nest - 1) / nest, code_map = 256;
  if (limits_.resident_alignment == 0) {  // the CPU backend: it keeps the f32 absmax it decodes with as well
    resident_bytes_ += codes + blocks * 4 + (w.double_quant ? blocks + nested * 4 : 0);
    return {++nf4_count_, w.shape, name};
  }
  const auto word = [&](std::uint64_t b) { return held((b + 3) / 4 * 4); };
  resident_bytes_ += word(codes);
  if (w.double_quant)
    resident_bytes_ += word(blocks) + word(nested * 4) + word(code_map * 4);
  else
    resident_bytes_ += word(blocks * 4) + 2 * word(4);
  return {++nf4_count_, w.shape, name};
}

std::uint64_t PlanningBackend::held(std::uint64_t bytes) const {
  const std::uint64_t a = limits_.resident_alignment;
  return a == 0 ? bytes : (std::max<std::uint64_t>(bytes, 4) + a - 1) / a * a;
}

void PlanningBackend::write(const BTensor& dst, const Tensor& src) {
  if (src.shape() != dst.shape)
    throw ShapeError("planning backend: write of " + shape_str(src.shape()) + " into '" + entry(dst).name + "' " +
                     shape_str(dst.shape));
  host_write(dst);
}

void PlanningBackend::write_rows(const BTensor& dst, std::int64_t row0, const Tensor& src) {
  check_write_rows("planning backend", entry(dst).name, dst.shape, row0, src);
  host_write(dst);
}

Tensor PlanningBackend::read(const BTensor& src) {
  // The host reads after a run: the value lives on from the op that made it to this point of the recording.
  Entry& base = entries_.at(entry(src).base - 1);
  if (base.spans.empty()) base.spans.emplace_back(op_, op_);
  base.spans.back().second = op_++;
  return Tensor::zeros(src.shape, src.dtype);
}

void PlanningBackend::free_step() {
  // Step tensors keep their records (the plan is read after the step); only new
  // recordings start afresh.
}

BTensor PlanningBackend::reshape(const BTensor& t, const Shape& shape) {
  Entry view = entry(t);
  if (shape_numel(shape) != shape_numel(view.shape))
    throw ShapeError("planning backend: reshape of '" + view.name + "' " + shape_str(view.shape) + " to " +
                     shape_str(shape) + " changes the element count");
  view.shape = shape;
  view.bytes = 0;  // a view owns no bytes
  entries_.push_back(view);
  return {static_cast<std::uint32_t>(entries_.size()), shape, t.dtype};
}

BTensor PlanningBackend::view_rows(const BTensor& t, std::int64_t row0, std::int64_t rows) {
  Entry view = entry(t);
  view.shape = view_rows_shape(view.name, view.shape, row0, rows);
  view.bytes = 0;
  entries_.push_back(view);
  return {static_cast<std::uint32_t>(entries_.size()), view.shape, t.dtype};
}

void PlanningBackend::touch(std::initializer_list<const BTensor*> ts) {
  for (const BTensor* t : ts) {
    if (!t || !*t) continue;
    Entry& base = entries_.at(entry(*t).base - 1);
    if (base.spans.empty() || base.program != recording_) base.spans.emplace_back(op_, op_);
    base.spans.back().second = op_;
    base.program = recording_;
  }
  ++op_;
}

void PlanningBackend::host_write(const BTensor& t) { entries_.at(entry(t).base - 1).host = true; }

std::vector<PlannedTensor> PlanningBackend::step_tensors() const {
  std::vector<PlannedTensor> out;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.life != Lifetime::Step || e.base != i + 1) continue;  // resident, or a view
    PlannedTensor p{e.name, e.bytes, e.made, e.made, {}};  // never touched: alive only where it was made
    if (e.host) {
      p.first = 0;
      p.last = std::max<std::int64_t>(op_, 1) - 1;
    } else if (!e.spans.empty()) {
      std::tie(p.first, p.last) = e.spans.front();
      p.also_live.assign(e.spans.begin() + 1, e.spans.end());
    }
    out.push_back(std::move(p));
  }
  return out;
}

StepLayout PlanningBackend::step_layout() const {
  StepLayout layout;
  layout.limits = limits_;
  const MemoryPlan plan = step_plan();
  layout.arena_bytes = plan.arena_bytes;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.life != Lifetime::Step || e.base != i + 1) continue;  // the same tensors, in the order of step_tensors()
    layout.tensors.push_back({e.name, e.shape, e.dtype, plan.offsets.at(layout.tensors.size()), e.host});
  }
  layout.op_scratch_bytes = op_scratch_;
  return layout;
}

std::uint64_t PlanningBackend::step_tensor_bytes() const {
  std::uint64_t sum = 0;
  const std::uint64_t a = limits_.alignment;
  for (const auto& t : step_tensors()) sum += (t.bytes + a - 1) / a * a;
  return sum;
}

}  // namespace pocketlora
