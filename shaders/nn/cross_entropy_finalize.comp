#version 450
#extension GL_GOOGLE_include_directive : require
// After the last vocabulary chunk: lse per row, and totals += (sum of the losses of rows whose label is not
// ignore_index, their count). Adding (not overwriting) lets the trainer call the loss on row chunks of a step's
// logits and on several micro-batches, with totals zeroed once per step. A single invocation sums rows in order
// (deterministic); the host splits the rows into ranges, one dispatch each, where the device caps loop iterations.
// The count is kept as a float: exact up to 2^24 tokens per step.
layout(local_size_x = 1) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { CrossEntropyPush p; };
layout(set = 0, binding = 0) readonly buffer Stats { vec4 stats[]; };
layout(set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(set = 0, binding = 2) writeonly buffer Lse { float lse[]; };
layout(set = 0, binding = 3) buffer Totals { float totals[]; };  // (loss sum, valid count)

void main() {
  float total = totals[0];
  float count = totals[1];
  for (uint r = p.begin; r < p.end; ++r) {
    const vec4 s = stats[r];
    const float l = s.x + log(s.y);
    lse[r] = l;
    if (labels[r] != p.ignore_index) {
      total += l - s.z;
      count += 1.0;
    }
  }
  totals[0] = total;
  totals[1] = count;
}
