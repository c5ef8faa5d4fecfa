// Rotary position embedding, in place on x [tokens, heads, head_dim]. One invocation per rotated pair.
// Angles come from a host-built table (cos, sin interleaved per frequency) computed in double, so CPU and GPU
// rotate by bit-identical factors and no shader evaluates cos/sin of large arguments (Vulkan only guarantees
// ~2^-11 absolute accuracy for GLSL sin/cos). Positions are per token (packed documents restart at 0). x f32 or
// f16 (shaders/common/storage.glsl), rotated in f32; the table stays f32.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { RopePush p; };
PL_TENSOR(0, 1, , x)
layout(set = 0, binding = 1) readonly buffer Pos { int pos[]; };
layout(set = 0, binding = 2) readonly buffer Table { vec2 cs[]; };  // [max_positions, head_dim / 2] (cos, sin)

void main() {
  const uint half_dim = p.head_dim / 2u;
  const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (gid >= p.tokens * p.heads * half_dim) return;
  const uint i = gid % half_dim;
  const uint th = gid / half_dim;  // token * heads + head
  const uint t = th / p.heads;
  const uint position = uint(clamp(pos[t], 0, int(p.max_positions) - 1));
  vec2 c = cs[position * half_dim + i];
  if ((p.flags & ROPE_INVERSE) != 0u) c.y = -c.y;
  const uint base = th * p.head_dim;
  const uint i0 = (p.flags & ROPE_INTERLEAVED) != 0u ? base + 2u * i : base + i;
  const uint i1 = (p.flags & ROPE_INTERLEAVED) != 0u ? i0 + 1u : i0 + half_dim;
  const float a = PL_LD(x, i0), b = PL_LD(x, i1);
  PL_ST(x, i0, a * c.x - b * c.y)
  PL_ST(x, i1, a * c.y + b * c.x)
}
