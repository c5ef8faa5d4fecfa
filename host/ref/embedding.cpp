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
  Tensor td = table.to(DType::F64), od = Tensor::zeros(out.shape(), DType::F64);
  const std::int64_t D = table.dim(1);
  for (std::int64_t t = 0; t < ids.numel(); ++t)
    for (std::int64_t d = 0; d < D; ++d)
      od.data<double>()[t * D + d] = td.data<double>()[ids.data<std::int32_t>()[t] * D + d];
  out.copy_from(od);
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
