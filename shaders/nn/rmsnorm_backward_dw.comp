#version 450
#extension GL_GOOGLE_include_directive : require
// dw_j (+)= sum over rows of dy_j * x_j * rstd. One invocation per column, rows summed in order: deterministic,
// no float atomics.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { RowsPush p; };
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer R { float rstd[]; };
layout(set = 0, binding = 2) readonly buffer DY { float dy[]; };
layout(set = 0, binding = 3) buffer DW { float dw[]; };

void main() {
  const uint j = gl_GlobalInvocationID.x;
  if (j >= p.dim) return;
  float acc = 0.0;
  for (uint r = p.row_begin; r < p.rows; ++r) acc = fma(dy[r * p.dim + j] * x[r * p.dim + j], rstd[r], acc);
  dw[j] = (p.flags & 1u) != 0u ? dw[j] + acc : acc;
}
