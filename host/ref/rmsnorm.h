#pragma once
// RMSNorm over the last dimension: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) (saved, [rows]).
#include "host/ref/tensor.h"

namespace pocketlora {
// x [rows, dim] (any leading shape flattened), w [dim]. Returns {rows, dim}; throws ShapeError naming the op.
std::pair<std::int64_t, std::int64_t> check_rmsnorm_shapes(const char* op, const Shape& x, const Shape& w);
namespace ref {
void rmsnorm(const Tensor& x, const Tensor& w, Tensor& y, Tensor& rstd, float eps);
// dx = d/dx, dw = sum over rows (overwritten, or added when accumulate_dw).
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                      bool accumulate_dw = false);
}  // namespace ref
}  // namespace pocketlora
