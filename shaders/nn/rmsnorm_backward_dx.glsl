// dx_i = rstd * g_i - rstd^3 * x_i * (sum_j g_j x_j) / D with g = dy * w. One invocation per row. x, w, dy, dx
// f32 or f16 each (shaders/common/storage.glsl), rstd and the sum f32.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { RowsPush p; };
PL_TENSOR(0, 1, readonly, x)
PL_TENSOR(1, 2, readonly, w)
layout(set = 0, binding = 2) readonly buffer R { float rstd[]; };
PL_TENSOR(3, 3, readonly, dy)
PL_TENSOR(4, 4, writeonly, dx)

void main() {
  const uint r = gl_GlobalInvocationID.x;
  if (r >= p.rows) return;
  const uint base = r * p.dim;
  const float s = rstd[r];
  float c = 0.0;
  for (uint i = 0u; i < p.dim; ++i) c = fma(PL_LD(dy, base + i) * PL_LD(w, i), PL_LD(x, base + i), c);
  const float k = s * s * s * c / float(p.dim);
  for (uint i = 0u; i < p.dim; ++i)
    PL_ST(dx, base + i, s * PL_LD(dy, base + i) * PL_LD(w, i) - k * PL_LD(x, base + i))
}
