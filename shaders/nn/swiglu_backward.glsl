// dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))), du = dh * silu(g). Every operand f32 or f16
// (shaders/common/storage.glsl), f32 math.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { ElementwisePush p; };
PL_TENSOR(0, 1, readonly, g)
PL_TENSOR(1, 2, readonly, u)
PL_TENSOR(2, 3, readonly, dh)
PL_TENSOR(3, 4, writeonly, dg)
PL_TENSOR(4, 5, writeonly, du)

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const float gi = PL_LD(g, i), ui = PL_LD(u, i), dhi = PL_LD(dh, i);
  const float sg = 1.0 / (1.0 + exp(-gi));
  PL_ST(dg, i, dhi * ui * sg * (1.0 + gi * (1.0 - sg)))
  PL_ST(du, i, dhi * gi * sg)
}
