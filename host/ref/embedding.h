#pragma once
// Token embedding lookup out[t] = table[ids[t]] and its backward (scatter-add into dtable).
#include "host/ref/tensor.h"

namespace pocketlora {
// ids i32 [T] (values checked against the vocabulary), table [V, D], out [T, D].
void check_embedding(const char* op, const Shape& ids, const Shape& table, const Shape& out);
void check_token_ids(const char* op, const Tensor& ids, std::int64_t vocab);  // throws naming the bad position
namespace ref {
void embedding(const Tensor& ids, const Tensor& table, Tensor& out);
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);  // dtable += scatter(dout)
}  // namespace ref
}  // namespace pocketlora
