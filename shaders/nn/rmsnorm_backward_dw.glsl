// dw_j (+)= sum over rows of dy_j * x_j * rstd. One invocation per column, rows summed in order: deterministic,
// no float atomics. x and dy f32 or f16 each (shaders/common/storage.glsl); rstd, the sum and dw f32.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { RowsPush p; };
PL_TENSOR(0, 1, readonly, x)
layout(set = 0, binding = 1) readonly buffer R { float rstd[]; };
PL_TENSOR(2, 2, readonly, dy)
layout(set = 0, binding = 3) buffer DW { float dw[]; };

void main() {
  const uint j = gl_GlobalInvocationID.x;
  if (j >= p.dim) return;
  float acc = 0.0;
  for (uint r = p.row_begin; r < p.rows; ++r)
    acc = fma(PL_LD(dy, r * p.dim + j) * PL_LD(x, r * p.dim + j), rstd[r], acc);
  dw[j] = (p.flags & 1u) != 0u ? dw[j] + acc : acc;
}
