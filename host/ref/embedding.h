#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/embedding.h.
#include "host/core/op/embedding.h"

namespace pocketlora::ref {

void embedding(const Tensor& ids, const Tensor& table, Tensor& out);
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);  // dtable += scatter(dout)

}  // namespace pocketlora::ref
