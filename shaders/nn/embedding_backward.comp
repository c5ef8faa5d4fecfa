#version 450
#extension GL_GOOGLE_include_directive : require
// dtable[ids[t], d] += dout[t, d] for the ids inside this chunk. One invocation per column d walks the tokens
// in order: repeated ids accumulate deterministically and no two invocations touch the same element (no float
// atomics, which phones lack).
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { EmbeddingPush p; };
layout(set = 0, binding = 0) readonly buffer Ids { int ids[]; };
layout(set = 0, binding = 1) readonly buffer DOut { float dout[]; };
layout(set = 0, binding = 2) buffer DTable { float dtable[]; };

void main() {
  const uint d = gl_GlobalInvocationID.x;
  if (d >= p.dim) return;
  for (uint t = p.token_begin; t < p.tokens; ++t) {
    const int row = ids[t] - int(p.row_offset);
    if (row < 0 || row >= int(p.chunk_rows)) continue;
    dtable[uint(row) * p.dim + d] += dout[t * p.dim + d];
  }
}
