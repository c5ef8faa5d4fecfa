#ifndef PL_SHADERS_COMMON_NN_PUSH_H
#define PL_SHADERS_COMMON_NN_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Row-wise ops (RMSNorm and its backward): `rows` rows of `dim` contiguous elements.
// The dw backward sums rows [row_begin, rows) so the host can split the sum under the device's loop limit.
struct RowsPush {
  uint rows;
  uint dim;
  float eps;
  uint flags;  // RMSNorm backward: bit 0 = accumulate into dw
  uint row_begin;
  uint pad0;
  uint pad1;
  uint pad2;
};
PL_CHECK_PUSH_SIZE(RowsPush, 32)

// Element-wise ops over `n` elements (SwiGLU, add).
struct ElementwisePush {
  uint n;
  float alpha;
  uint flags;
  uint pad;
};
PL_CHECK_PUSH_SIZE(ElementwisePush, 16)

// RoPE over x [tokens, heads, head_dim] with a host-built cos/sin table [positions, head_dim / 2].
#define ROPE_INTERLEAVED 1u  // pairs (2i, 2i+1) as llama2.c / GGUF store q,k; else rotate_half (i, i + d/2) as HF
#define ROPE_INVERSE 2u      // rotate by -theta (the backward)
struct RopePush {
  uint tokens;
  uint heads;
  uint head_dim;
  uint flags;
  uint max_positions;
  uint pad0;
  uint pad1;
  uint pad2;
};
PL_CHECK_PUSH_SIZE(RopePush, 32)

// Embedding lookup / backward over one row chunk [row_offset, row_offset + chunk_rows) of the table. The
// backward walks tokens [token_begin, tokens) so the host can split the walk under the device's loop limit.
struct EmbeddingPush {
  uint tokens;
  uint dim;
  uint row_offset;
  uint chunk_rows;
  uint token_begin;
  uint pad0;
  uint pad1;
  uint pad2;
};
PL_CHECK_PUSH_SIZE(EmbeddingPush, 32)

// Cross-entropy over a vocabulary chunk [vocab_offset, vocab_offset + chunk) of logits [rows, chunk].
// stats / finalize walk only [begin, end) (columns of the chunk / token rows) per dispatch, so the host can split
// a loop that would exceed the device's per-invocation loop limit (host/ops/loop_limit.h).
#define CE_FIRST_CHUNK 1u  // stats: first columns of the first chunk (start fresh)
struct CrossEntropyPush {
  uint rows;
  uint chunk;
  uint vocab_offset;
  uint flags;
  int ignore_index;
  uint pad0;
  uint begin;
  uint end;
};
PL_CHECK_PUSH_SIZE(CrossEntropyPush, 32)
PL_SHADER_NAMESPACE_END
#endif
