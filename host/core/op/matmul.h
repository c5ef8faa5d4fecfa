#pragma once
// Reference C = alpha * op(A) * op(B)^T (op(A) [M,K], op(B) [N,K], C [M,N]) and its backward, through OpenBLAS
// (host/ref/blas.h). f16/bf16 inputs are widened to f32 (f32 accumulation, as the GPU kernel does); f64 inputs stay
// f64 for gradient checks.
#include <array>

#include "host/core/tensor.h"

namespace pocketlora {

struct MatmulOptions {
  float alpha = 1.0f;
  bool accumulate = false;  // C += alpha * op(A) * op(B)^T
  bool trans_a = false;     // A is stored [K,M] (op(A) = A^T)
  bool trans_b = false;     // B is stored [K,N] (op(B) = B^T, so C = op(A) * B)
};

// Checks shapes and names all of them on mismatch (shared by the GPU op). Returns {M, N, K}.
std::array<std::int64_t, 3> check_matmul_shapes(const char* op, const Shape& a, const Shape& b, const Shape& c,
                                                const MatmulOptions& opt = {});

}  // namespace pocketlora
