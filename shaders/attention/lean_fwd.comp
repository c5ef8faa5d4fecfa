#version 450
#extension GL_GOOGLE_include_directive : require
// Lean variant forward (flash-attention style, never stores [T, T]): one invocation per (query i, head h),
// numbered i * n_heads + h so the lanes of a subgroup share i (same loop length, and heads of one GQA group
// read the same k/v rows). The scaled query row and the output accumulator live in registers (HEAD_DIM is a
// specialization constant); keys are visited in blocks of BK with an online softmax: one rescale of the
// accumulator per block instead of per key.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;
layout(constant_id = 2) const uint BK = 8;

#include "shaders/common/attention_push.h"
layout(push_constant) uniform Push { AttentionPush p; };
layout(set = 0, binding = 0) readonly buffer QBuf { float q[]; };
layout(set = 0, binding = 1) readonly buffer KBuf { float k[]; };
layout(set = 0, binding = 2) readonly buffer VBuf { float v[]; };
layout(set = 0, binding = 3) readonly buffer SegBuf { int seg[]; };
layout(set = 0, binding = 4) writeonly buffer OBuf { float o[]; };
layout(set = 0, binding = 5) writeonly buffer LseBuf { float lse[]; };
#include "mask.glsl"

// Below any real score; a finite sentinel keeps exp() away from infinities (whose handling Vulkan leaves
// loosely specified) while still underflowing to exactly 0.
const float kMasked = -3.0e38;

void main() {
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= p.T * p.n_heads) return;
  const uint i = idx / p.n_heads, h = idx % p.n_heads;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint kstride = p.n_kv_heads * HEAD_DIM;

  float qr[HEAD_DIM];
  float acc[HEAD_DIM];
  for (uint d = 0u; d < HEAD_DIM; ++d) {
    qr[d] = p.scale * q[idx * HEAD_DIM + d];
    acc[d] = 0.0;
  }
  float m = kMasked, l = 0.0;
  for (uint j0 = 0u; j0 <= i; j0 += BK) {
    float sb[BK];
    float bm = m;
    for (uint b = 0u; b < BK; ++b) {
      const uint j = j0 + b;
      float sv = kMasked;
      if (j <= i && visible(i, j)) {
        const uint kb = j * kstride + g * HEAD_DIM;
        sv = 0.0;
        for (uint d = 0u; d < HEAD_DIM; ++d) sv = fma(qr[d], k[kb + d], sv);
      }
      sb[b] = sv;
      bm = max(bm, sv);
    }
    const float corr = exp(m - bm);
    m = bm;
    l *= corr;
    for (uint d = 0u; d < HEAD_DIM; ++d) acc[d] *= corr;
    for (uint b = 0u; b < BK; ++b) {
      if (sb[b] == kMasked) continue;
      const float pr = exp(sb[b] - m);
      l += pr;
      const uint vb = (j0 + b) * kstride + g * HEAD_DIM;
      for (uint d = 0u; d < HEAD_DIM; ++d) acc[d] = fma(pr, v[vb + d], acc[d]);
    }
  }
  const float inv = 1.0 / l;
  for (uint d = 0u; d < HEAD_DIM; ++d) o[idx * HEAD_DIM + d] = acc[d] * inv;
  lse[idx] = m + log(l);
}
