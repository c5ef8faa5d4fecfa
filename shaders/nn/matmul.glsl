// C = alpha * A * B^T with A [M,K], B [N,K] row-major (both K-contiguous: the layout of activations and of
// Linear weights [out,in]). Register tiling: each invocation owns a TM x TN block of C and keeps it in
// registers; no shared memory, because on lavapipe (and Mali) shared memory + barriers is slower than
// letting the cache serve the reuse. Tile sizes are specialization constants from the device profile.
// Includer defines A_T / B_T / C_T (float or float16_t each: any mix, e.g. an f16 weight times f32 activations
// into f32 logits) and the storage extensions they need; products and sums are f32 whatever the storage.
#include "shaders/common/matmul_push.h"

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;

layout(set = 0, binding = 0) readonly buffer ABuf { A_T a[]; };
layout(set = 0, binding = 1) readonly buffer BBuf { B_T b[]; };
layout(set = 0, binding = 2) buffer CBuf { C_T c[]; };
layout(push_constant) uniform Push { MatmulPush p; };

void main() {
  const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint col0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TN;
  if (row0 >= p.M || col0 >= p.N) return;

  // Out-of-range rows/cols are clamped (not branched) so the inner loop stays uniform; they are not stored.
  // Element (i, k) of op(A) is a[arow[i] + k * astep]; likewise for B.
  const bool ta = (p.flags & MATMUL_TRANS_A) != 0u, tb = (p.flags & MATMUL_TRANS_B) != 0u;
  const uint astep = ta ? p.lda : 1u, bstep = tb ? p.ldb : 1u;
  uint arow[TM];
  uint brow[TN];
  for (uint i = 0; i < TM; ++i) arow[i] = p.a_offset + (ta ? min(row0 + i, p.M - 1) : min(row0 + i, p.M - 1) * p.lda);
  for (uint j = 0; j < TN; ++j) brow[j] = tb ? min(col0 + j, p.N - 1) : min(col0 + j, p.N - 1) * p.ldb;

  float acc[TM][TN];
  for (uint i = 0; i < TM; ++i)
    for (uint j = 0; j < TN; ++j) acc[i][j] = 0.0;

  for (uint k = 0; k < p.K; ++k) {
    float av[TM];
    float bv[TN];
    for (uint i = 0; i < TM; ++i) av[i] = float(a[arow[i] + k * astep]);
    for (uint j = 0; j < TN; ++j) bv[j] = float(b[brow[j] + k * bstep]);
    for (uint i = 0; i < TM; ++i)
      for (uint j = 0; j < TN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
  }

  for (uint i = 0; i < TM; ++i) {
    const uint r = row0 + i;
    if (r >= p.M) break;
    for (uint j = 0; j < TN; ++j) {
      const uint col = col0 + j;
      if (col >= p.N) break;
      const uint idx = p.c_offset + r * p.ldc + col;
      float v = p.alpha * acc[i][j];
      if ((p.flags & MATMUL_ACCUMULATE) != 0u) v += float(c[idx]);
      c[idx] = C_T(v);
    }
  }
}
