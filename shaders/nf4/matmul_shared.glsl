// Y[M,N] = alpha * X[M,K] * dequant(W)[N,K]^T with shared-memory tiles (K % 8 == 0): per step of BK along K the
// workgroup stages a [BM, BK] tile of X and DECODES a [BN, BK] tile of W once into shared memory, then every
// invocation computes its TM x TN block from shared memory. On GPUs with fast local memory (desktop, RDNA-based
// Xclipse) this decodes each weight once per workgroup instead of once per invocation column; the profile flag
// nf4.shared_tiles selects it (lavapipe and Mali keep the register-only kernel, see the profile table).
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;
layout(constant_id = 4) const uint BK = 32;  // multiple of 8

#include "shaders/common/nf4_push.h"
layout(push_constant) uniform Push { Nf4MatmulPush p; };
layout(set = 0, binding = 0) readonly buffer XBuf { X_T x[]; };
layout(set = 0, binding = 5) buffer YBuf { Y_T y[]; };
#include "nf4_weight.glsl"

const uint BM = gl_WorkGroupSize.y * TM;
const uint BN = gl_WorkGroupSize.x * TN;
shared float xs[BM * BK];
shared float ws[BN * BK];

void main() {
  const uint threads = gl_WorkGroupSize.x * gl_WorkGroupSize.y;
  const uint tid = gl_LocalInvocationID.y * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
  const uint row_base = gl_WorkGroupID.y * BM, col_base = gl_WorkGroupID.x * BN;
  float acc[TM][TN];
  for (uint i = 0u; i < TM; ++i)
    for (uint j = 0u; j < TN; ++j) acc[i][j] = 0.0;

  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    for (uint i = tid; i < BM * BK; i += threads) {
      const uint r = row_base + i / BK, k = k0 + i % BK;
      xs[i] = (r < p.M && k < p.K) ? float(x[r * p.K + k]) : 0.0;
    }
    for (uint i = tid; i < BN * (BK / 8u); i += threads) {
      const uint n = i / (BK / 8u), w8 = i % (BK / 8u);
      const uint gn = col_base + n, gk = k0 + w8 * 8u;
      float w[8];
      if (gn < p.N && gk < p.K) {
        nf4_weights8(gn * p.K + gk, w);
      } else {
        for (uint t = 0u; t < 8u; ++t) w[t] = 0.0;
      }
      for (uint t = 0u; t < 8u; ++t) ws[n * BK + w8 * 8u + t] = w[t];
    }
    barrier();
    for (uint kk = 0u; kk < BK; ++kk) {
      float a[TM];
      float b[TN];
      for (uint i = 0u; i < TM; ++i) a[i] = xs[(gl_LocalInvocationID.y * TM + i) * BK + kk];
      for (uint j = 0u; j < TN; ++j) b[j] = ws[(gl_LocalInvocationID.x * TN + j) * BK + kk];
      for (uint i = 0u; i < TM; ++i)
        for (uint j = 0u; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    barrier();
  }

  for (uint i = 0u; i < TM; ++i) {
    const uint r = row_base + gl_LocalInvocationID.y * TM + i;
    if (r >= p.M) break;
    for (uint j = 0u; j < TN; ++j) {
      const uint c = col_base + gl_LocalInvocationID.x * TN + j;
      if (c >= p.N) break;
      const uint idx = r * p.N + c;
      float v = p.alpha * acc[i][j];
      if (p.accumulate != 0u) v += float(y[idx]);
      y[idx] = Y_T(v);
    }
  }
}
