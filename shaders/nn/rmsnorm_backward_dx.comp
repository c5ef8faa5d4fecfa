#version 450
#extension GL_GOOGLE_include_directive : require
// dx_i = rstd * g_i - rstd^3 * x_i * (sum_j g_j x_j) / D with g = dy * w. One invocation per row.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { RowsPush p; };
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) readonly buffer R { float rstd[]; };
layout(set = 0, binding = 3) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 4) writeonly buffer DX { float dx[]; };

void main() {
  const uint r = gl_GlobalInvocationID.x;
  if (r >= p.rows) return;
  const uint base = r * p.dim;
  const float s = rstd[r];
  float c = 0.0;
  for (uint i = 0u; i < p.dim; ++i) c = fma(dy[base + i] * w[i], x[base + i], c);
  const float k = s * s * s * c / float(p.dim);
  for (uint i = 0u; i < p.dim; ++i) dx[base + i] = s * dy[base + i] * w[i] - k * x[base + i];
}
