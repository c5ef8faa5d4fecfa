#version 450
#extension GL_GOOGLE_include_directive : require
// Online log-sum-exp over vocabulary chunks: for each row, stats = (running max m, sum of exp(l - m), target
// logit) updated with one chunk of logits [rows, chunk], so the full [tokens, vocab] logits never need to be
// resident. One invocation per row.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { CrossEntropyPush p; };
layout(set = 0, binding = 0) readonly buffer Logits { float logits[]; };
layout(set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(set = 0, binding = 2) buffer Stats { vec4 stats[]; };  // (max, sum, target logit, unused)

void main() {
  const uint r = gl_GlobalInvocationID.x;
  if (r >= p.rows) return;
  vec4 s = (p.flags & CE_FIRST_CHUNK) != 0u ? vec4(-3.402823466e38, 0.0, 0.0, 0.0) : stats[r];
  const uint base = r * p.chunk;
  float cmax = s.x;
  for (uint c = p.begin; c < p.end; ++c) cmax = max(cmax, logits[base + c]);
  float sum = s.y * exp(s.x - cmax);
  for (uint c = p.begin; c < p.end; ++c) sum += exp(logits[base + c] - cmax);
  const int local_label = labels[r] - int(p.vocab_offset);
  if (labels[r] != p.ignore_index && local_label >= int(p.begin) && local_label < int(p.end))
    s.z = logits[base + uint(local_label)];
  stats[r] = vec4(cmax, sum, s.z, 0.0);
}
