#include "host/model/frozen_tensor.h"

#include "host/core/error.h"

namespace pocketlora {

FrozenTensor FrozenTensor::deferred(Shape shape, RowReader rows) {
  if (shape.empty() || !rows) throw InternalError("FrozenTensor::deferred: needs a shape of rank >= 1 and a reader");
  FrozenTensor t;
  t.shape_ = std::move(shape);
  t.reader_ = std::make_shared<const RowReader>(std::move(rows));
  return t;
}

Tensor FrozenTensor::rows(std::int64_t first, std::int64_t count) const {
  if (!reader_) return values_.slice_rows(first, first + count);
  Tensor t = (*reader_)(first, count);
  Shape want = shape_;
  want[0] = count;
  if (t.shape() != want || t.dtype() != DType::F32)
    throw InternalError("deferred tensor: read " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) +
                        " for rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of " +
                        shape_str(shape_) + ", expected f32 " + shape_str(want));
  return t;
}

Tensor FrozenTensor::values() const { return reader_ ? rows(0, shape_[0]) : values_; }

bool FrozenTensor::same_as(const FrozenTensor& o) const {
  if (reader_ || o.reader_) return reader_ == o.reader_;
  return values_.defined() && values_.raw() == o.values_.raw() && values_.shape() == o.values_.shape();
}

}  // namespace pocketlora
