#include "host/train/planning_backend.h"

#include "host/core/error.h"

namespace pocketlora {

PlanningBackend::Entry& PlanningBackend::entry(const BTensor& t) {
  if (t.id == 0 || t.id > entries_.size())
    throw InvalidArgument("planning backend: tensor handle " + std::to_string(t.id) + " does not exist");
  return entries_[t.id - 1];
}

BTensor PlanningBackend::alloc(const Shape& shape, DType dtype, Lifetime life, const std::string& name) {
  const auto bytes = static_cast<std::uint64_t>(shape_numel(shape)) * dtype_size(dtype);
  const auto id = static_cast<std::uint32_t>(entries_.size() + 1);
  entries_.push_back({name, bytes, life, id, -1, -1, op_, shape, dtype});
  if (life == Lifetime::Weights) resident_bytes_ += bytes;
  return {id, shape, dtype};
}

BNf4 PlanningBackend::upload_nf4(const Nf4Quantized& w, const std::string& name) {
  resident_bytes_ +=
      w.codes.size() + (w.double_quant ? w.dq.absmax_q.size() + w.dq.nested_absmax.size() * 4 : w.absmax.size() * 4);
  return {++nf4_count_, w.shape, name};
}

void PlanningBackend::write(const BTensor& dst, const Tensor& src) {
  if (src.shape() != dst.shape)
    throw ShapeError("planning backend: write of " + shape_str(src.shape()) + " into '" + entry(dst).name + "' " +
                     shape_str(dst.shape));
  touch({&dst});
}

Tensor PlanningBackend::read(const BTensor& src) {
  touch({&src});
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
    if (base.first < 0) base.first = op_;
    base.last = op_;
  }
  ++op_;
}

std::vector<PlannedTensor> PlanningBackend::step_tensors() const {
  std::vector<PlannedTensor> out;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.life != Lifetime::Step || e.base != i + 1) continue;  // resident, or a view
    // Never touched: alive only where it was made.
    out.push_back({e.name, e.bytes, e.first < 0 ? e.made : e.first, e.last < 0 ? e.made : e.last});
  }
  return out;
}

std::uint64_t PlanningBackend::step_tensor_bytes() const {
  std::uint64_t sum = 0;
  for (const auto& t : step_tensors()) sum += (t.bytes + alignment_ - 1) / alignment_ * alignment_;
  return sum;
}

}  // namespace pocketlora
