// LoRA input dropout, forward (out = mask * in / (1-p)) or backward-accumulate (out (+)= mask * in / (1-p)).
// in and out f32 or f16 each (shaders/common/storage.glsl), the product in f32.
layout(local_size_x_id = 0) in;
#include "shaders/common/lora_push.h"
#include "shaders/common/philox.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { DropoutPush p; };
PL_TENSOR(0, 1, readonly, src)
PL_TENSOR(1, 2, , dst)
layout(set = 0, binding = 2) readonly buffer Key { uint key[LORA_KEY_WORDS]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const bool keep = dropout_keep(uvec4(key[0], key[1], key[2], key[3]), p.stream, i, p.p);
  const float v = keep ? PL_LD(src, i) * p.scale : 0.0;
  PL_ST(dst, i, (p.flags & 1u) != 0u ? PL_LD(dst, i) + v : v)
}
