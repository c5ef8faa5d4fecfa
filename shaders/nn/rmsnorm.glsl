// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row; rstd saved for the backward. One invocation per
// row: rows are short (hidden size) and many (tokens), and a sequential sum is deterministic and needs no
// barriers (which lavapipe executes slowly). x, w, y f32 or f16 each (shaders/common/storage.glsl), rstd and all
// sums f32. Included by rmsnorm.comp (f32) and rmsnorm_f16.comp.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { RowsPush p; };
PL_TENSOR(0, 1, readonly, x)
PL_TENSOR(1, 2, readonly, w)
PL_TENSOR(2, 3, writeonly, y)
layout(set = 0, binding = 3) writeonly buffer R { float rstd[]; };

void main() {
  const uint r = gl_GlobalInvocationID.x;
  if (r >= p.rows) return;
  const uint base = r * p.dim;
  float ss = 0.0;
  for (uint i = 0u; i < p.dim; ++i) {
    const float v = PL_LD(x, base + i);
    ss = fma(v, v, ss);
  }
  const float s = 1.0 / sqrt(ss / float(p.dim) + p.eps);
  rstd[r] = s;
  for (uint i = 0u; i < p.dim; ++i) PL_ST(y, base + i, PL_LD(x, base + i) * s * PL_LD(w, i))
}
