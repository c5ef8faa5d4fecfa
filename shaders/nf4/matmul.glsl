// Y[M,N] = alpha * X[M,K] * dequant(W)[N,K]^T, tiled path for M > 4 (prefill / training). Each invocation owns a
// TM x TN block of Y in registers; per step of 8 along K it dequantizes one code word (8 weights) for each of
// its TN rows of W once and reuses them for all TM rows of X, so W is never materialised. No shared memory
// (lavapipe and Mali gain nothing from it); tile sizes come from the device profile.
// Includer defines X_T / Y_T (float or float16_t) and the storage extension they need.
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;

#include "shaders/common/nf4_push.h"
layout(push_constant) uniform Push { Nf4MatmulPush p; };
layout(set = 0, binding = 0) readonly buffer XBuf { X_T x[]; };
layout(set = 0, binding = 5) buffer YBuf { Y_T y[]; };
#include "nf4_weight.glsl"

void main() {
  const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint col0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TN;
  if (row0 >= p.M || col0 >= p.N) return;

  uint xrow[TM];
  uint wrow[TN];
  for (uint i = 0u; i < TM; ++i) xrow[i] = min(row0 + i, p.M - 1u) * p.K;
  for (uint j = 0u; j < TN; ++j) wrow[j] = min(col0 + j, p.N - 1u) * p.K;
  float acc[TM][TN];
  for (uint i = 0u; i < TM; ++i)
    for (uint j = 0u; j < TN; ++j) acc[i][j] = 0.0;

  if ((p.K & 7u) == 0u) {
    // Every row starts on a code word: 8 weights per 32-bit load.
    for (uint k = 0u; k < p.K; k += 8u) {
      float w[TN][8];
      for (uint j = 0u; j < TN; ++j) nf4_weights8(wrow[j] + k, w[j]);
      for (uint i = 0u; i < TM; ++i) {
        float xv[8];
        for (uint t = 0u; t < 8u; ++t) xv[t] = float(x[xrow[i] + k + t]);
        for (uint j = 0u; j < TN; ++j)
          for (uint t = 0u; t < 8u; ++t) acc[i][j] = fma(xv[t], w[j][t], acc[i][j]);
      }
    }
  } else {
    // Rows start mid-word and blocks span rows (e.g. K = 172): element-wise decode.
    for (uint k = 0u; k < p.K; ++k) {
      float w[TN];
      for (uint j = 0u; j < TN; ++j) w[j] = nf4_weight(wrow[j] + k);
      for (uint i = 0u; i < TM; ++i) {
        const float xv = float(x[xrow[i] + k]);
        for (uint j = 0u; j < TN; ++j) acc[i][j] = fma(xv, w[j], acc[i][j]);
      }
    }
  }

  for (uint i = 0u; i < TM; ++i) {
    const uint r = row0 + i;
    if (r >= p.M) break;
    for (uint j = 0u; j < TN; ++j) {
      const uint c = col0 + j;
      if (c >= p.N) break;
      const uint idx = r * p.N + c;
      float v = p.alpha * acc[i][j];
      if (p.accumulate != 0u) v += float(y[idx]);
      y[idx] = Y_T(v);
    }
  }
}
