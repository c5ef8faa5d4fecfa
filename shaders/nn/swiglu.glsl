// h = silu(g) * u, silu(g) = g * sigmoid(g). g, u, h f32 or f16 each (shaders/common/storage.glsl), f32 math.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { ElementwisePush p; };
PL_TENSOR(0, 1, readonly, g)
PL_TENSOR(1, 2, readonly, u)
PL_TENSOR(2, 3, writeonly, h)

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const float gi = PL_LD(g, i);
  const float sg = 1.0 / (1.0 + exp(-gi));
  PL_ST(h, i, gi * sg * PL_LD(u, i))
}
