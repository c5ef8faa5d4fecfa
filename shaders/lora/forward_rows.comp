#version 450
#extension GL_GOOGLE_include_directive : require
// Y += scale * (X A^T) B^T for M * r <= LORA_ROWS_MAX_MR (generation: one token, a small rank), f32, in ONE
// dispatch where the GEMM path takes two: on a dispatch-bound device (lavapipe: ~45 us each) the adapter's cost
// is its dispatch count. Each workgroup first computes all of T = X A^T into shared memory (lanes over the M * r
// dot products of length K; redundant across workgroups, r * K multiply-adds each, small next to the base linear's
// N * K), then each lane one output column n over the M rows. Workgroup 0 also stores T.
layout(local_size_x_id = 0) in;
#include "shaders/common/lora_push.h"
layout(push_constant) uniform Push { LoraRowsPush p; };
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer A { float a[]; };
layout(set = 0, binding = 2) readonly buffer B { float b[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
layout(set = 0, binding = 4) writeonly buffer T { float t[]; };

shared float ts[LORA_ROWS_MAX_MR];

void main() {
  const uint lane = gl_LocalInvocationID.x;
  const uint mr = p.M * p.r;
  for (uint i = lane; i < mr; i += gl_WorkGroupSize.x) {
    const uint m = i / p.r, j = i % p.r;
    float acc = 0.0;
    for (uint k = 0u; k < p.K; ++k) acc = fma(x[m * p.K + k], a[j * p.K + k], acc);
    ts[i] = acc;
    if (gl_WorkGroupID.x == 0u) t[i] = acc;
  }
  barrier();
  const uint n = gl_WorkGroupID.x * gl_WorkGroupSize.x + lane;
  if (n >= p.N) return;
  for (uint m = 0u; m < p.M; ++m) {
    float acc = 0.0;
    for (uint j = 0u; j < p.r; ++j) acc = fma(ts[m * p.r + j], b[n * p.r + j], acc);
    y[m * p.N + n] += p.scale * acc;
  }
}
