#version 450
#extension GL_GOOGLE_include_directive : require
// dlogits = grad_scale * (softmax - onehot(label)) / n_valid for one vocabulary chunk; rows with an ignored
// label get zeros. n_valid is read from the finalize result on the GPU: no host round trip.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { CrossEntropyPush p; };
layout(set = 0, binding = 0) readonly buffer Logits { float logits[]; };
layout(set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(set = 0, binding = 2) readonly buffer Lse { float lse[]; };
layout(set = 0, binding = 3) readonly buffer Result { vec4 result[]; };
layout(set = 0, binding = 4) writeonly buffer DLogits { float dlogits[]; };

void main() {
  const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (gid >= p.rows * p.chunk) return;
  const uint r = gid / p.chunk, c = gid % p.chunk;
  const int label = labels[r];
  const float count = result[0].y;
  if (label == p.ignore_index || count == 0.0) {
    dlogits[gid] = 0.0;
    return;
  }
  const float prob = exp(logits[gid] - lse[r]);
  const float onehot = label - int(p.vocab_offset) == int(c) ? 1.0 : 0.0;
  dlogits[gid] = p.grad_scale * (prob - onehot) / count;
}
