#ifndef PL_SHADERS_COMMON_MATMUL_PUSH_H
#define PL_SHADERS_COMMON_MATMUL_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// C[M,N] = alpha * op(A) * op(B)^T (+ C when flags & MATMUL_ACCUMULATE). op(A) is [M,K]: A stored [M,K], or
// [K,M] when MATMUL_TRANS_A; op(B) is [N,K]: B stored [N,K], or [K,N] when MATMUL_TRANS_B. Row strides in
// elements. The transposed forms give every LoRA / linear gradient (dB = dY^T T, dA = (dY B)^T X) without copies.
// a_offset / c_offset (elements) start A and C inside their bindings: a head weight split by rows across bindings
// runs chunk by chunk on a column block of C (C's columns from c_offset, row stride ldc) or, transposed, on a
// column block of A (the chunk's part of the reduction).
#define MATMUL_ACCUMULATE 1u
#define MATMUL_TRANS_A 2u
#define MATMUL_TRANS_B 4u
struct MatmulPush {
  uint M;
  uint N;
  uint K;
  uint lda;
  uint ldb;
  uint ldc;
  uint flags;
  float alpha;
  uint a_offset;
  uint c_offset;
};
PL_CHECK_PUSH_SIZE(MatmulPush, 40)
// The few-row GEMV with one LoRA adapter fused (shaders/nn/matmul_gemv.glsl, WITH_LORA): C += scale * (A LA^T) LB^T.
struct MatmulLoraPush {
  MatmulPush mm;
  uint lora_r;
  float lora_scale;
};
PL_CHECK_PUSH_SIZE(MatmulLoraPush, 48)
PL_SHADER_NAMESPACE_END
#endif
