#version 450
#extension GL_GOOGLE_include_directive : require
// Simple variant, forward step 2: one invocation per (query i, head h) turns its score row into probabilities
// in place (0 for every invisible key, so the following GEMMs need no mask) and saves lse = max + log(sum).
// Invocations are numbered i * head_count + (h - head_base): neighbouring lanes share i, hence the same loop length.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#include "shaders/common/attention_push.h"
layout(push_constant) uniform Push { AttentionPush p; };
layout(set = 0, binding = 0) buffer SBuf { float s[]; };
layout(set = 0, binding = 1) readonly buffer SegBuf { int seg[]; };
layout(set = 0, binding = 2) writeonly buffer LseBuf { float lse[]; };
#include "mask.glsl"

void main() {
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= p.T * p.head_count) return;
  const uint i = idx / p.head_count, hc = idx % p.head_count;
  const uint base = (hc * p.T + i) * p.T;
  float m = s[base + i];  // the diagonal is always visible
  for (uint j = 0u; j < i; ++j)
    if (visible(i, j)) m = max(m, s[base + j]);
  float l = 0.0;
  for (uint j = 0u; j <= i; ++j) {
    const float e = visible(i, j) ? exp(s[base + j] - m) : 0.0;
    s[base + j] = e;
    l += e;
  }
  const float inv = 1.0 / l;
  for (uint j = 0u; j <= i; ++j) s[base + j] *= inv;
  for (uint j = i + 1u; j < p.T; ++j) s[base + j] = 0.0;
  lse[i * p.n_heads + p.head_base + hc] = m + log(l);
}
