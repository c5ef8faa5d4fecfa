// out[t, :] = table[ids[t], :] for the ids inside this table chunk (the table may be split across bindings);
// one invocation per output element. Ids outside every chunk leave their row untouched (the host zero-fills
// `out` first and validates ids against the vocabulary before they reach the GPU). The includer defines TABLE_T
// (float, or float16_t for an f16 table read into f32 rows) and the storage extension it needs.
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { EmbeddingPush p; };
layout(set = 0, binding = 0) readonly buffer Ids { int ids[]; };
layout(set = 0, binding = 1) readonly buffer Table { TABLE_T table[]; };
layout(set = 0, binding = 2) buffer Out { float out_[]; };

void main() {
  const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (gid >= p.tokens * p.dim) return;
  const uint t = gid / p.dim, d = gid % p.dim;
  const int row = ids[t] - int(p.row_offset);
  if (row < 0 || row >= int(p.chunk_rows)) return;
  out_[gid] = float(table[uint(row) * p.dim + d]);
}
