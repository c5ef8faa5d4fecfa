#include "host/core/op/embedding.h"

#include "host/core/error.h"

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

}  // namespace pocketlora
