#version 450
#extension GL_GOOGLE_include_directive : require
// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row; rstd saved for the backward. One invocation per
// row: rows are short (hidden size) and many (tokens), and a sequential sum is deterministic and needs no
// barriers (which lavapipe executes slowly).
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { RowsPush p; };
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };
layout(set = 0, binding = 3) writeonly buffer R { float rstd[]; };

void main() {
  const uint r = gl_GlobalInvocationID.x;
  if (r >= p.rows) return;
  const uint base = r * p.dim;
  float ss = 0.0;
  for (uint i = 0u; i < p.dim; ++i) ss = fma(x[base + i], x[base + i], ss);
  const float s = 1.0 / sqrt(ss / float(p.dim) + p.eps);
  rstd[r] = s;
  for (uint i = 0u; i < p.dim; ++i) y[base + i] = x[base + i] * s * w[i];
}
