#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/matmul.h.
#include "host/core/op/matmul.h"

namespace pocketlora::ref {

void matmul(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt = {});
// dA = alpha * dC * B, dB = alpha * dC^T * A (same argument order as the forward, gradients last).
void matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc, Tensor& da, Tensor& db,
                     const MatmulOptions& opt = {});

}  // namespace pocketlora::ref
