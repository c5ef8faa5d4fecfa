#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/rmsnorm.h.
#include "host/core/op/rmsnorm.h"

namespace pocketlora::ref {

void rmsnorm(const Tensor& x, const Tensor& w, Tensor& y, Tensor& rstd, float eps);
// dx = d/dx, dw = sum over rows (overwritten, or added when accumulate_dw).
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                      bool accumulate_dw = false);

}  // namespace pocketlora::ref
