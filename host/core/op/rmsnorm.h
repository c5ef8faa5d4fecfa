#pragma once
// RMSNorm over the last dimension: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) (saved, [rows]).
#include "host/core/tensor.h"

namespace pocketlora {
// x [rows, dim] (any leading shape flattened), w [dim]. Returns {rows, dim}; throws ShapeError naming the op.
std::pair<std::int64_t, std::int64_t> check_rmsnorm_shapes(const char* op, const Shape& x, const Shape& w);

}  // namespace pocketlora
