#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/rope.h.
#include "host/core/op/rope.h"

namespace pocketlora::ref {

// x [tokens, heads, head_dim] rotated in place; positions i32 [tokens]; inverse rotates by -theta (backward:
// the gradient of a rotation is the inverse rotation).
void rope(Tensor& x, const Tensor& positions, const Tensor& table, RopeLayout layout, bool inverse = false);

}  // namespace pocketlora::ref
