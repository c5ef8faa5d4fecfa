// C[M,N] block = alpha * A[M,K] * B[N,K]^T (+C) for a few rows (M <= MAX_M <= 4: decoding), neither operand
// transposed: the tiled kernel (matmul.glsl) would use 1/TM of each tile there and re-read B per tile row, while
// this is bandwidth-bound: each column n (a row of B, e.g. one of the output head's 32000 rows) is produced by a
// group of LANES invocations striding over B's row (coalesced loads), each keeping M partial sums; the group is
// reduced with a subgroup add (LANES = subgroup size) or, in the lane-per-column variant, not at all.
// A and C are f32 (the decoder's activations); the includer defines B_T (float or float16_t) and USE_SUBGROUP.
// WITH_LORA (matmul_gemv_lora_*.comp) adds one LoRA adapter's product in the same dispatch:
//   C += lora_scale * (A LA^T) LB^T      LA [r, K], LB [N, r] f32
// Each workgroup first computes T = A LA^T (M * r dot products of length K; in the subgroup variant one subgroup per
// product, lanes striding over K as for a column) into shared memory, then every column adds its r-term dot
// product (lanes over the r terms, reduced with the column's own sum). T is redundant across workgroups (M * r * K
// multiply-adds each), so the host may give this variant more columns per workgroup than the plain one
// (matmul.gemv_lora_cols) to amortise it. On a dispatch-bound device (lavapipe: ~45 us a dispatch) the adapter then
// costs no dispatch of its own.
// LORA_T_LANES (matmul_gemv_lora_lanes_*.comp, subgroup only, the profile's matmul.gemv_lora_t_lanes) keeps T in
// registers instead: the workgroup is one subgroup, lane l computes T[m, l + i * lanes] (i < T_SLOTS) alone over K
// in vec4 loads and then holds exactly the terms its columns' r-term products need. No shared memory and no
// barrier: llvmpipe runs a shader with a barrier as one coroutine per subgroup, and emulates every shared-memory
// and buffer access with a per-lane scalar loop (one vec4 access costs about what one float access does there).
#include "shaders/common/matmul_push.h"
#ifndef WITH_LORA
#define WITH_LORA 0
#endif
#ifndef LORA_T_LANES
#define LORA_T_LANES 0
#endif
#if WITH_LORA
#include "shaders/common/lora_push.h"
#endif
#if LORA_T_LANES
// T terms per lane: r <= T_SLOTS * subgroup size (the host checks).
#define T_SLOTS 4
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
// Columns per workgroup as the host computed them from the reported subgroup size; the loop in main() stays
// correct if the driver picks another subgroup size.
layout(constant_id = 1) const uint COLS_PER_WG = 8;
// Rows of A, fixed per pipeline (1..4) so the per-row loops unroll without bounds checks.
layout(constant_id = 2) const uint MAX_M = 4;

layout(set = 0, binding = 0) readonly buffer ABuf { float a[]; };
layout(set = 0, binding = 1) readonly buffer BBuf { B_T b[]; };
layout(set = 0, binding = 2) buffer CBuf { float c[]; };
#if WITH_LORA
layout(set = 0, binding = 3) readonly buffer LaBuf { float la[]; };
layout(set = 0, binding = 4) readonly buffer LbBuf { float lb[]; };
layout(push_constant) uniform Push { MatmulPush p; uint lora_r; float lora_scale; };
#if LORA_T_LANES
// vec4 views of A and LA (K % 4 == 0, 16-byte aligned rows and bindings: the host checks).
layout(set = 0, binding = 0) readonly buffer A4Buf { vec4 a4[]; };
layout(set = 0, binding = 3) readonly buffer La4Buf { vec4 la4[]; };

// tl[m * T_SLOTS + i] = T[m, lane + i * lanes] = A[m, :] . LA[lane + i * lanes, :], 0 past r. The slot loop has a
// constant trip count, so it unrolls and tl is never indexed dynamically (a gather on llvmpipe). tl is sized for
// the most rows (4), not MAX_M * T_SLOTS: passed in and out of functions, an array sized by a specialization-
// constant expression came back wrong on lavapipe (Mesa 22.3; the MatmulLora cases caught it).
void lora_t_lanes(uint lane, uint lanes, out float tl[4 * T_SLOTS]) {
  const uint k4s = p.K / 4u;
  for (uint i = 0u; i < T_SLOTS; ++i) {
    for (uint m = 0u; m < MAX_M; ++m) tl[m * T_SLOTS + i] = 0.0;
    if (i * lanes >= lora_r) continue;
    const uint j = lane + i * lanes;
    // Lanes past r walk row r - 1 (in bounds, no divergent loop) and drop the result.
    const uint lrow = min(j, lora_r - 1u) * k4s;
    float acc[MAX_M];
    for (uint m = 0u; m < MAX_M; ++m) acc[m] = 0.0;
    for (uint k4 = 0u; k4 < k4s; ++k4) {
      const vec4 w = la4[lrow + k4];
      for (uint m = 0u; m < MAX_M; ++m) acc[m] += dot(a4[(p.a_offset + m * p.lda) / 4u + k4], w);
    }
    for (uint m = 0u; m < MAX_M; ++m) tl[m * T_SLOTS + i] = j < lora_r ? acc[m] : 0.0;
  }
}
#else
shared float ts[LORA_ROWS_MAX_MR];

// T[m, j] = A[m, :] . LA[j, :] for all M * r pairs; every invocation reaches the barrier.
void lora_t() {
  const uint mr = MAX_M * lora_r;
#if USE_SUBGROUP
  // A subgroup per pair, lanes over K: the work spreads over the whole workgroup in coalesced loads (lanes over
  // the pairs left all but M * r lanes idle, each walking a K-long row alone).
  for (uint i = gl_SubgroupID; i < mr; i += gl_NumSubgroups) {
    const uint arow = p.a_offset + (i / lora_r) * p.lda, lrow = (i % lora_r) * p.K;
    float acc = 0.0;
    for (uint k = gl_SubgroupInvocationID; k < p.K; k += gl_SubgroupSize) acc = fma(a[arow + k], la[lrow + k], acc);
    acc = subgroupAdd(acc);
    if (subgroupElect()) ts[i] = acc;
  }
#else
  for (uint i = gl_LocalInvocationIndex; i < mr; i += gl_WorkGroupSize.x) {
    const uint m = i / lora_r, j = i % lora_r, arow = p.a_offset + m * p.lda, lrow = j * p.K;
    float acc = 0.0;
    for (uint k = 0u; k < p.K; ++k) acc = fma(a[arow + k], la[lrow + k], acc);
    ts[i] = acc;
  }
#endif
  barrier();
}
#endif
#else
layout(push_constant) uniform Push { MatmulPush p; };
#endif

#if LORA_T_LANES
#define T_LANE_T float[4 * T_SLOTS]
#else
#define T_LANE_T float[MAX_M]
#endif

#if WITH_LORA
void column(uint n, uint lane, uint lanes, T_LANE_T tl) {
#else
void column(uint n, uint lane, uint lanes) {
#endif
  const bool in_range = n < p.N;
  float acc[MAX_M];
  for (uint m = 0u; m < MAX_M; ++m) acc[m] = 0.0;
  if (in_range) {
    const uint brow = n * p.ldb;
    if ((p.K & 3u) == 0u) {
      // Four elements per step: a quarter of the loop checks (gallivm's loop budget) and of the loop overhead.
      for (uint k = lane * 4u; k < p.K; k += lanes * 4u) {
        const vec4 w = vec4(float(b[brow + k]), float(b[brow + k + 1u]), float(b[brow + k + 2u]),
                            float(b[brow + k + 3u]));
        for (uint m = 0u; m < MAX_M; ++m) {
          const uint ar = p.a_offset + m * p.lda + k;
          acc[m] = fma(a[ar], w.x, acc[m]);
          acc[m] = fma(a[ar + 1u], w.y, acc[m]);
          acc[m] = fma(a[ar + 2u], w.z, acc[m]);
          acc[m] = fma(a[ar + 3u], w.w, acc[m]);
        }
      }
    } else {
      for (uint k = lane; k < p.K; k += lanes) {
        const float w = float(b[brow + k]);
        for (uint m = 0u; m < MAX_M; ++m) acc[m] = fma(a[p.a_offset + m * p.lda + k], w, acc[m]);
      }
    }
  }
#if WITH_LORA
  // The column's r-term product, lanes over the terms (lane 0 alone would walk all r while the others wait); T's
  // terms come from registers where r <= lanes (read once per workgroup in main()), else from shared memory. Each
  // lane folds alpha and the scale into its partial, so one reduction gives the whole sum.
  float lacc[MAX_M];
  for (uint m = 0u; m < MAX_M; ++m) lacc[m] = 0.0;
  if (in_range) {
#if LORA_T_LANES
    for (uint i = 0u; i < T_SLOTS; ++i) {
      if (i * lanes >= lora_r) continue;
      const uint j = lane + i * lanes;
      const float w = j < lora_r ? lb[n * lora_r + j] : 0.0;
      for (uint m = 0u; m < MAX_M; ++m) lacc[m] = fma(tl[m * T_SLOTS + i], w, lacc[m]);
    }
#else
    if (lora_r <= lanes) {
      if (lane < lora_r) {
        const float w = lb[n * lora_r + lane];
        for (uint m = 0u; m < MAX_M; ++m) lacc[m] = tl[m] * w;
      }
    } else {
      for (uint j = lane; j < lora_r; j += lanes) {
        const float w = lb[n * lora_r + j];
        for (uint m = 0u; m < MAX_M; ++m) lacc[m] = fma(ts[m * lora_r + j], w, lacc[m]);
      }
    }
#endif
  }
  for (uint m = 0u; m < MAX_M; ++m) acc[m] = fma(lora_scale, lacc[m], p.alpha * acc[m]);
  const float alpha = 1.0;
#else
  const float alpha = p.alpha;
#endif
#if USE_SUBGROUP
  for (uint m = 0u; m < MAX_M; ++m) acc[m] = subgroupAdd(acc[m]);
  if (lane != 0u) return;
#endif
  if (!in_range) return;
  for (uint m = 0u; m < MAX_M; ++m) {
    const uint idx = p.c_offset + m * p.ldc + n;
    float v = alpha * acc[m];
    if ((p.flags & MATMUL_ACCUMULATE) != 0u) v += c[idx];
    c[idx] = v;
  }
}

void main() {
#if WITH_LORA && LORA_T_LANES
  float tl[4 * T_SLOTS];
  lora_t_lanes(gl_SubgroupInvocationID, gl_SubgroupSize, tl);
#define LORA_ARG , tl
#elif WITH_LORA
  lora_t();
#if USE_SUBGROUP
  const uint tlane = gl_SubgroupInvocationID, tlanes = gl_SubgroupSize;
#else
  const uint tlane = 0u, tlanes = 1u;
#endif
  // This lane's terms of T for the columns' r-term products (lanes over r), where they fit in one step.
  float tl[MAX_M];
  for (uint m = 0u; m < MAX_M; ++m) tl[m] = lora_r <= tlanes && tlane < lora_r ? ts[m * lora_r + tlane] : 0.0;
#define LORA_ARG , tl
#else
#define LORA_ARG
#endif
#if USE_SUBGROUP
  // One subgroup per column; all lanes of a subgroup take the same column (uniform for subgroupAdd).
  const uint first = gl_WorkGroupID.x * COLS_PER_WG;
  for (uint r = gl_SubgroupID; r < COLS_PER_WG; r += gl_NumSubgroups)
    column(first + r, gl_SubgroupInvocationID, gl_SubgroupSize LORA_ARG);
#else
  column(gl_GlobalInvocationID.x, 0u, 1u LORA_ARG);
#endif
}
