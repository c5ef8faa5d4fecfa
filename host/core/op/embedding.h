#pragma once
// Token embedding lookup out[t] = table[ids[t]] and its backward (scatter-add into dtable).
#include "host/core/tensor.h"

namespace pocketlora {
// ids i32 [T] (values checked against the vocabulary), table [V, D], out [T, D].
void check_embedding(const char* op, const Shape& ids, const Shape& table, const Shape& out);
void check_token_ids(const char* op, const Tensor& ids, std::int64_t vocab);  // throws naming the bad position

}  // namespace pocketlora
