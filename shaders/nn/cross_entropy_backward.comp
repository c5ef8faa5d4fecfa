#version 450
#extension GL_GOOGLE_include_directive : require
// dlogits = scale * (softmax - onehot(label)) for one vocabulary chunk; rows with an ignored label get zeros.
// scale is read from a buffer the host writes before each submit (1 / valid tokens of the whole optimizer step),
// so a recorded step replays unchanged. dlogits may be the logits buffer itself: each invocation reads its own
// element before writing it.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { CrossEntropyPush p; };
layout(set = 0, binding = 0) readonly buffer Logits { float logits[]; };
layout(set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(set = 0, binding = 2) readonly buffer Lse { float lse[]; };
layout(set = 0, binding = 3) readonly buffer Scale { float scale[]; };
layout(set = 0, binding = 4) writeonly buffer DLogits { float dlogits[]; };

void main() {
  const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (gid >= p.rows * p.chunk) return;
  const uint r = gid / p.chunk, c = gid % p.chunk;
  const int label = labels[r];
  if (label == p.ignore_index) {
    dlogits[gid] = 0.0;
    return;
  }
  const float prob = exp(logits[gid] - lse[r]);
  const float onehot = label - int(p.vocab_offset) == int(c) ? 1.0 : 0.0;
  dlogits[gid] = scale[0] * (prob - onehot);
}
