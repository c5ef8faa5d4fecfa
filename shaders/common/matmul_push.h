#ifndef PL_SHADERS_COMMON_MATMUL_PUSH_H
#define PL_SHADERS_COMMON_MATMUL_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// C[M,N] = alpha * A[M,K] * B[N,K]^T (+ C when accumulate != 0). Row strides in elements.
struct MatmulPush {
  uint M;
  uint N;
  uint K;
  uint lda;
  uint ldb;
  uint ldc;
  uint accumulate;
  float alpha;
};
PL_CHECK_PUSH_SIZE(MatmulPush, 32)
PL_SHADER_NAMESPACE_END
#endif
