#include "host/core/op/attention.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "host/core/error.h"

namespace pocketlora {

AttentionDims check_attention_shapes(const char* op, const Shape& q, const Shape& k, const Shape& v,
                                     const Shape* segments, const Shape& out, const Shape& lse) {
  auto fail = [&](const std::string& why) {
    std::string s = std::string(op) + ": " + why + " (q " + shape_str(q) + ", k " + shape_str(k) + ", v " +
                    shape_str(v);
    if (segments) s += ", segments " + shape_str(*segments);
    s += ", out " + shape_str(out) + ", lse " + shape_str(lse) +
         "; expected q [T, n_heads, head_dim], k/v [T, n_kv_heads, head_dim], out like q, lse [T, n_heads]" +
         (segments ? ", segments [T]" : "") + ")";
    throw ShapeError(s);
  };
  if (q.size() != 3 || k.size() != 3 || v.size() != 3 || out.size() != 3) fail("q, k, v and out must be 3-D");
  AttentionDims d{q[0], q[1], k[1], q[2]};
  if (d.T < 0 || d.n_heads <= 0 || d.n_kv_heads <= 0 || d.head_dim <= 0) fail("empty head or head_dim dimension");
  if (k[0] != d.T || v[0] != d.T) fail("k and v must have T = " + std::to_string(d.T) + " rows like q");
  if (k != v) fail("k and v must have the same shape");
  if (k[2] != d.head_dim)
    fail("head_dim of k (" + std::to_string(k[2]) + ") != head_dim of q (" + std::to_string(d.head_dim) + ")");
  if (d.n_heads % d.n_kv_heads != 0)
    fail("n_heads (" + std::to_string(d.n_heads) + ") is not a multiple of n_kv_heads (" +
         std::to_string(d.n_kv_heads) + ")");
  if (out != q) fail("out must have the shape of q");
  if (lse != Shape{d.T, d.n_heads}) fail("lse must be [T, n_heads]");
  if (segments && *segments != Shape{d.T}) fail("segments must be [T]");
  return d;
}

float attention_scale(const AttentionDims& d, const AttentionOptions& opt) {
  return opt.scale != 0.0f ? opt.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.head_dim)));
}

Tensor attention_segments(const std::vector<std::int64_t>& doc_lengths) {
  std::int64_t T = 0;
  for (auto n : doc_lengths) {
    if (n < 0) throw InvalidArgument("attention_segments: negative document length " + std::to_string(n));
    T += n;
  }
  Tensor s = Tensor::zeros({T}, DType::I32);
  std::int32_t* p = s.data<std::int32_t>();
  for (std::size_t doc = 0; doc < doc_lengths.size(); ++doc)
    for (std::int64_t n = 0; n < doc_lengths[doc]; ++n) *p++ = static_cast<std::int32_t>(doc);
  return s;
}

}  // namespace pocketlora
