#ifndef PL_SHADERS_COMMON_NF4_PUSH_H
#define PL_SHADERS_COMMON_NF4_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// NF4 weight W [N,K] (bitsandbytes layout: 64-element blocks over the flattened row-major tensor, two codes per
// byte with the first element in the high nibble). absmax is either fp32 per block (double_quant = 0) or the
// double-quantized form: absmax[b] = code_map[absmax_q[b]] * nested_scale[b / 256] + offset.
//   forward: Y[M,N] = alpha * X[M,K] * W^T (+ Y when accumulate)
//   dX:      dX[M,K] = alpha * dY[M,N] * W   (+ dX when accumulate)
struct Nf4MatmulPush {
  uint M;
  uint N;
  uint K;
  uint double_quant;
  float offset;
  float alpha;
  uint accumulate;
  uint nested_block;  // absmax blocks per nested scale (256 in bitsandbytes)
};
PL_CHECK_PUSH_SIZE(Nf4MatmulPush, 32)
PL_SHADER_NAMESPACE_END
#endif
