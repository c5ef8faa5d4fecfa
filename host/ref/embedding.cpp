#include "host/ref/embedding.h"

#include "host/util/error.h"

namespace pocketlora {

void check_embedding(const char* op, const Shape& ids, const Shape& table, const Shape& out) {
  if (ids.size() != 1 || table.size() != 2 || out.size() != 2 || out[0] != ids[0] || out[1] != table[1])
    throw ShapeError(std::string(op) + ": ids " + shape_str(ids) + ", table " + shape_str(table) + ", out " +
                     shape_str(out) + " — expected ids [T], table [V, D], out [T, D]");
}

void check_token_ids(const char* op, const Tensor& ids, std::int64_t vocab) {
  if (ids.dtype() != DType::I32) throw ShapeError(std::string(op) + ": token ids must be i32");
  for (std::int64_t t = 0; t < ids.numel(); ++t) {
    const auto id = ids.data<std::int32_t>()[t];
    if (id < 0 || id >= vocab)
      throw InvalidArgument(std::string(op) + ": token id " + std::to_string(id) + " at position " + std::to_string(t) +
                            " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
}

namespace ref {

void embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  check_embedding("ref::embedding", ids.shape(), table.shape(), out.shape());
  check_token_ids("ref::embedding", ids, table.dim(0));
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

}  // namespace ref
}  // namespace pocketlora
