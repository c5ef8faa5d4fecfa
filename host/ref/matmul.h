#pragma once
// Reference C = alpha * A * B^T (A [M,K], B [N,K], C [M,N]) and its backward, in Eigen. f16/bf16 inputs are
// widened to f32 (f32 accumulation, as the GPU kernel does); f64 inputs stay f64 for gradient checks.
#include "host/ref/tensor.h"

namespace pocketlora {

struct MatmulOptions {
  float alpha = 1.0f;
  bool accumulate = false;  // C += alpha * A * B^T
};

// Checks shapes/dtypes and names both shapes on mismatch (shared by the GPU op).
void check_matmul_shapes(const char* op, const Shape& a, const Shape& b, const Shape& c);

namespace ref {
void matmul(const Tensor& a, const Tensor& b, Tensor& c, const MatmulOptions& opt = {});
// dA = alpha * dC * B, dB = alpha * dC^T * A (same argument order as the forward, gradients last).
void matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc, Tensor& da, Tensor& db,
                     const MatmulOptions& opt = {});
}  // namespace ref

}  // namespace pocketlora
