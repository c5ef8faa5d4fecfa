// Lean variant forward (flash-attention style, never stores [T, T]): one invocation per (block of QM consecutive
// queries, head h), numbered block * n_heads + h so the lanes of a subgroup share the block (same loop length,
// and heads of one GQA group read the same k/v rows). Each k and v row loaded is used for QM queries. The
// scaled query rows and output accumulators live in registers (HEAD_DIM is a specialization constant); keys are
// visited in blocks of BK with an online softmax: one rescale of the accumulators per block instead of per key.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;
layout(constant_id = 2) const uint BK = 8;
layout(constant_id = 3) const uint QM = 1;

#include "shaders/common/attention_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { AttentionPush p; };
PL_TENSOR(0, 4, readonly, q)
PL_TENSOR(1, 5, readonly, k)
PL_TENSOR(2, 6, readonly, v)
layout(set = 0, binding = 3) readonly buffer SegBuf { int seg[]; };
PL_TENSOR(4, 7, writeonly, o)
layout(set = 0, binding = 5) writeonly buffer LseBuf { float lse[]; };
#include "mask.glsl"

// Below any real score; a finite sentinel keeps exp() away from infinities (whose handling Vulkan leaves
// loosely specified) while still underflowing to exactly 0.
const float kMasked = -3.0e38;

void main() {
  const uint blocks = (p.T + QM - 1u) / QM;
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= blocks * p.n_heads) return;
  const uint i0 = (idx / p.n_heads) * QM, h = idx % p.n_heads;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint kstride = p.n_kv_heads * HEAD_DIM;
  const uint ilast = min(i0 + QM, p.T) - 1u;

  // Rows past T are clamped to the last row (computed, not stored) so the loops stay uniform.
  uint row[QM];
  float qr[QM][HEAD_DIM];
  float acc[QM][HEAD_DIM];
  float m[QM];
  float l[QM];
  for (uint a = 0u; a < QM; ++a) {
    row[a] = min(i0 + a, ilast);
    const uint qb = (row[a] * p.n_heads + h) * HEAD_DIM;
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      qr[a][d] = p.scale * PL_LD(q, qb + d);
      acc[a][d] = 0.0;
    }
    m[a] = kMasked;
    l[a] = 0.0;
  }
  for (uint j0 = 0u; j0 <= ilast; j0 += BK) {
    float sb[QM][BK];
    for (uint b = 0u; b < BK; ++b) {
      const uint j = min(j0 + b, ilast);
      const uint kb = j * kstride + g * HEAD_DIM;
      float sv[QM];
      for (uint a = 0u; a < QM; ++a) sv[a] = 0.0;
      for (uint d = 0u; d < HEAD_DIM; ++d) {
        const float kv = PL_LD(k, kb + d);
        for (uint a = 0u; a < QM; ++a) sv[a] = fma(qr[a][d], kv, sv[a]);
      }
      for (uint a = 0u; a < QM; ++a) sb[a][b] = (j0 + b <= row[a] && visible(row[a], j0 + b)) ? sv[a] : kMasked;
    }
    float pb[QM][BK];
    for (uint a = 0u; a < QM; ++a) {
      float bm = m[a];
      for (uint b = 0u; b < BK; ++b) bm = max(bm, sb[a][b]);
      const float corr = exp(m[a] - bm);
      m[a] = bm;
      l[a] *= corr;
      for (uint d = 0u; d < HEAD_DIM; ++d) acc[a][d] *= corr;
      for (uint b = 0u; b < BK; ++b) {
        pb[a][b] = sb[a][b] == kMasked ? 0.0 : exp(sb[a][b] - bm);
        l[a] += pb[a][b];
      }
    }
    for (uint b = 0u; b < BK; ++b) {
      const uint vb = min(j0 + b, ilast) * kstride + g * HEAD_DIM;
      for (uint d = 0u; d < HEAD_DIM; ++d) {
        const float vv = PL_LD(v, vb + d);
        for (uint a = 0u; a < QM; ++a) acc[a][d] = fma(pb[a][b], vv, acc[a][d]);
      }
    }
  }
  for (uint a = 0u; a < QM; ++a) {
    if (i0 + a > ilast) break;
    const uint ob = (row[a] * p.n_heads + h) * HEAD_DIM;
    const float inv = 1.0 / l[a];
    for (uint d = 0u; d < HEAD_DIM; ++d) PL_ST(o, ob + d, acc[a][d] * inv)
    lse[row[a] * p.n_heads + h] = m[a] + log(l[a]);
  }
}
