#pragma once
// A frozen model weight that is not a base linear — the embedding table, the output head, the RMSNorm weights —
// either resident (a Tensor: f32, or f64 in gradient checks) or deferred: its rows are converted from the mapped
// checkpoint when they are read (upload_llama reads a table a chunk at a time), so Llama-3.2-1B's 1 GiB f32 table
// never exists on the host (docs/MEMORY.md). Copies share the values or the reader: a tied head assigned from the
// embedding table is the same tensor (same_as), uploaded once.
#include <cstdint>
#include <functional>
#include <memory>

#include "host/core/tensor.h"

namespace pocketlora {

class FrozenTensor {
 public:
  // Rows [first, first + count) (the outermost dimension; a 1-D tensor's elements) as f32.
  using RowReader = std::function<Tensor(std::int64_t first, std::int64_t count)>;

  FrozenTensor() = default;
  FrozenTensor(Tensor values) : values_(std::move(values)) {}  // NOLINT: a model built in memory assigns Tensors
  static FrozenTensor deferred(Shape shape, RowReader rows);

  bool is_deferred() const { return static_cast<bool>(reader_); }
  const Shape& shape() const { return reader_ ? shape_ : values_.shape(); }
  DType dtype() const { return reader_ ? DType::F32 : values_.dtype(); }  // what rows() returns
  std::size_t nbytes() const { return shape_nbytes(shape(), dtype()); }
  // Rows [first, first + count): a view of the values when resident, read from the checkpoint when deferred.
  Tensor rows(std::int64_t first, std::int64_t count) const;
  Tensor values() const;  // the whole tensor (read when deferred)
  bool same_as(const FrozenTensor& o) const;

 private:
  Tensor values_;
  Shape shape_;
  std::shared_ptr<const RowReader> reader_;
};

}  // namespace pocketlora
