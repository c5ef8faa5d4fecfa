#ifndef PL_SHADERS_COMMON_LORA_PUSH_H
#define PL_SHADERS_COMMON_LORA_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Dropout on the LoRA input: out = keep ? in / (1 - p) : 0 (forward), dx (+)= keep ? dxd / (1 - p) : 0
// (backward, flag bit 0 = accumulate). The mask is regenerated from (key, stream, index), never stored. The key
// (seed and step counter, LORA_KEY_WORDS u32) is read from a buffer, not pushed, so a recorded step replays with a
// new mask after the host writes the next key.
#define LORA_KEY_WORDS 4
struct DropoutPush {
  uint n;
  uint stream;
  float p;
  uint flags;
  float scale;  // 1 / (1 - p), computed once on the host so CPU and GPU multiply by the same float
  uint pad0;
};
PL_CHECK_PUSH_SIZE(DropoutPush, 24)
// Y += scale * (X A^T) B^T for a few rows in one dispatch (lora/forward_rows.comp): X [M, K], A [r, K], B [N, r],
// Y [M, N], T = X A^T [M, r] written by workgroup 0.
#define LORA_ROWS_MAX_MR 256
struct LoraRowsPush {
  uint M;
  uint K;
  uint N;
  uint r;
  float scale;
  uint pad0;
};
PL_CHECK_PUSH_SIZE(LoraRowsPush, 24)
PL_SHADER_NAMESPACE_END
#endif
