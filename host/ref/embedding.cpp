#include "host/ref/embedding.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "host/core/error.h"

namespace pocketlora::ref {

void embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  check_embedding("ref::embedding", ids.shape(), table.shape(), out.shape());
  check_token_ids("ref::embedding", ids, table.dim(0));
  if (table.dtype() == out.dtype() && table.is_contiguous() && out.is_contiguous()) {  // rows copied as they are
    const std::size_t row_bytes = out.nbytes() / static_cast<std::size_t>(std::max<std::int64_t>(ids.numel(), 1));
    for (std::int64_t t = 0; t < ids.numel(); ++t)
      std::memcpy(static_cast<std::byte*>(out.raw()) + t * static_cast<std::int64_t>(row_bytes),
                  static_cast<const std::byte*>(table.raw()) +
                      ids.data<std::int32_t>()[t] * static_cast<std::int64_t>(row_bytes),
                  row_bytes);
    return;
  }
  // Another dtype (an f16 table into f32 rows): gather the rows as stored, then convert only those, never the
  // whole table (a 128256 x 2048 f16 table would be 1 GiB as f32).
  const Tensor tc = table.is_contiguous() ? table : table.clone();
  Tensor rows = Tensor::zeros(out.shape(), table.dtype());
  const std::size_t row_bytes = shape_nbytes({table.dim(1)}, table.dtype());
  for (std::int64_t t = 0; t < ids.numel(); ++t)
    std::memcpy(static_cast<std::byte*>(rows.raw()) + t * static_cast<std::int64_t>(row_bytes),
                static_cast<const std::byte*>(tc.raw()) +
                    ids.data<std::int32_t>()[t] * static_cast<std::int64_t>(row_bytes),
                row_bytes);
  out.copy_from(rows);
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  check_embedding("ref::embedding_backward", ids.shape(), dtable.shape(), dout.shape());
  check_token_ids("ref::embedding_backward", ids, dtable.dim(0));
  Tensor gd = dout.to(DType::F64), td = dtable.to(DType::F64);
  const std::int64_t D = dtable.dim(1);
  for (std::int64_t t = 0; t < ids.numel(); ++t)
    for (std::int64_t d = 0; d < D; ++d)
      td.data<double>()[ids.data<std::int32_t>()[t] * D + d] += gd.data<double>()[t * D + d];
  dtable.copy_from(td);
}

}  // namespace pocketlora::ref
