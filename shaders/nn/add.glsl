// y = a + alpha * b (y may be a: the residual add in place). a, b, y f32 or f16 each
// (shaders/common/storage.glsl): a projection's f16 output adds onto an f32 residual stream.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { ElementwisePush p; };
PL_TENSOR(0, 1, readonly, b)
PL_TENSOR(1, 2, , y)
PL_TENSOR(2, 3, readonly, a)

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  PL_ST(y, i, PL_LD(a, i) + p.alpha * PL_LD(b, i))
}
