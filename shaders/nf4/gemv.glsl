// Y[M,N] = alpha * X[M,K] * dequant(W)^T for M <= 4 (decode): bandwidth-bound, so each output row n is produced
// by a group of LANES invocations that stride over W's row in code words (coalesced 32-bit loads), each
// keeping M partial sums; the group is reduced with a subgroup add (LANES = subgroup size) or, in the
// lane-per-row variant (LANES = 1), not at all. Includer defines X_T, Y_T, LANES and USE_SUBGROUP.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
// Output rows per workgroup as the host computed them from the reported subgroup size; the loop below stays
// correct if the driver picks another subgroup size (some GPUs vary it per pipeline).
layout(constant_id = 1) const uint ROWS_PER_WG = 8;

#include "shaders/common/nf4_push.h"
layout(push_constant) uniform Push { Nf4MatmulPush p; };
layout(set = 0, binding = 0) readonly buffer XBuf { X_T x[]; };
layout(set = 0, binding = 5) buffer YBuf { Y_T y[]; };
#include "nf4_weight.glsl"

// Rows of X, fixed per pipeline (1..4) so the per-row loops unroll without bounds checks.
layout(constant_id = 2) const uint MAX_M = 4;

void row(uint n, uint lane, uint lanes) {
  const bool in_range = n < p.N;
  float acc[MAX_M];
  for (uint m = 0u; m < MAX_M; ++m) acc[m] = 0.0;
  if (in_range) {
    const uint base = n * p.K;
    if ((p.K & 63u) == 0u) {
      // Whole 64-element blocks per lane: one absmax decode per 8 code words, and the dot product is taken on
      // the raw codebook values, scaled once per block.
      for (uint k = lane * 64u; k < p.K; k += lanes * 64u) {
        const float s = nf4_absmax((base + k) >> 6);
        float part[MAX_M];
        for (uint m = 0u; m < MAX_M; ++m) part[m] = 0.0;
        for (uint q = 0u; q < 8u; ++q) {
          const uint word = wcodes[(base + k) / 8u + q];
          for (uint j = 0u; j < 4u; ++j) {
            const uint byte_ = (word >> (8u * j)) & 0xffu;
            const float w0 = nf4_value(byte_ >> 4), w1 = nf4_value(byte_ & 0xfu);
            const uint kk = k + q * 8u + 2u * j;
            for (uint m = 0u; m < MAX_M; ++m) {
                  part[m] = fma(float(x[m * p.K + kk]), w0, part[m]);
              part[m] = fma(float(x[m * p.K + kk + 1u]), w1, part[m]);
            }
          }
        }
        for (uint m = 0u; m < MAX_M; ++m) acc[m] = fma(part[m], s, acc[m]);
      }
    } else if ((p.K & 7u) == 0u) {
      for (uint k = lane * 8u; k < p.K; k += lanes * 8u) {
        float w[8];
        nf4_weights8(base + k, w);
        for (uint m = 0u; m < MAX_M; ++m) {
          for (uint t = 0u; t < 8u; ++t) acc[m] = fma(float(x[m * p.K + k + t]), w[t], acc[m]);
        }
      }
    } else {
      for (uint k = lane; k < p.K; k += lanes) {
        const float w = nf4_weight(base + k);
        for (uint m = 0u; m < MAX_M; ++m) {
          acc[m] = fma(float(x[m * p.K + k]), w, acc[m]);
        }
      }
    }
  }
#if USE_SUBGROUP
  for (uint m = 0u; m < MAX_M; ++m) acc[m] = subgroupAdd(acc[m]);
  if (lane != 0u) return;
#endif
  if (!in_range) return;
  for (uint m = 0u; m < MAX_M; ++m) {
    if (m >= p.M) break;
    const uint idx = m * p.N + n;
    float v = p.alpha * acc[m];
    if (p.accumulate != 0u) v += float(y[idx]);
    y[idx] = Y_T(v);
  }
}

void main() {
#if USE_SUBGROUP
  // One subgroup per output row; all lanes of a subgroup take the same trip count (uniform for subgroupAdd).
  const uint first = gl_WorkGroupID.x * ROWS_PER_WG;
  for (uint r = gl_SubgroupID; r < ROWS_PER_WG; r += gl_NumSubgroups)
    row(first + r, gl_SubgroupInvocationID, gl_SubgroupSize);
#else
  row(gl_GlobalInvocationID.x, 0u, 1u);
#endif
}
