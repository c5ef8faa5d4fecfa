#include "host/core/op/kv_cache.h"

#include <cmath>
#include <string>

#include "host/core/error.h"

namespace pocketlora {

KvCacheDims check_kv_cache_write_shapes(const char* op, const Shape& k, const Shape& v, const Shape& positions,
                                        const Shape& k_cache, const Shape& v_cache) {
  const auto fail = [&](const std::string& why) {
    throw ShapeError(std::string(op) + ": " + why + " (k " + shape_str(k) + ", v " + shape_str(v) + ", positions " +
                     shape_str(positions) + ", k_cache " + shape_str(k_cache) + ", v_cache " + shape_str(v_cache) +
                     "; expected k/v [T, n_kv_heads, head_dim], positions [T], caches [capacity, n_kv_heads, "
                     "head_dim])");
  };
  if (k.size() != 3 || v.size() != 3 || k_cache.size() != 3 || v_cache.size() != 3) fail("k, v and caches must be 3-D");
  if (k != v) fail("k and v must have the same shape");
  if (k_cache != v_cache) fail("k_cache and v_cache must have the same shape");
  if (k[1] != k_cache[1] || k[2] != k_cache[2]) fail("k rows and cache rows differ");
  if (positions != Shape{k[0]}) fail("positions must be [T]");
  if (k_cache[0] <= 0 || k[1] <= 0 || k[2] <= 0) fail("empty cache");
  return {k[0], k_cache[0], 0, k[1], k[2]};
}

KvCacheDims check_kv_cache_attention_shapes(const char* op, const Shape& q, const Shape& k_cache,
                                            const Shape& v_cache, const Shape& positions, const Shape& out) {
  const auto fail = [&](const std::string& why) {
    throw ShapeError(std::string(op) + ": " + why + " (q " + shape_str(q) + ", k_cache " + shape_str(k_cache) +
                     ", v_cache " + shape_str(v_cache) + ", positions " + shape_str(positions) + ", out " +
                     shape_str(out) + "; expected q/out [T, n_heads, head_dim], caches [capacity, n_kv_heads, "
                     "head_dim], positions [T])");
  };
  if (q.size() != 3 || k_cache.size() != 3 || v_cache.size() != 3 || out.size() != 3)
    fail("q, out and caches must be 3-D");
  const KvCacheDims d{q[0], k_cache[0], q[1], k_cache[1], q[2]};
  if (d.capacity <= 0 || d.n_heads <= 0 || d.n_kv_heads <= 0 || d.head_dim <= 0) fail("empty dimension");
  if (k_cache != v_cache) fail("k_cache and v_cache must have the same shape");
  if (k_cache[2] != d.head_dim) fail("head_dim of the caches differs from q's");
  if (d.n_heads % d.n_kv_heads != 0) fail("n_heads is not a multiple of n_kv_heads");
  if (out != q) fail("out must have the shape of q");
  if (positions != Shape{d.T}) fail("positions must be [T]");
  return d;
}

float kv_cache_attention_scale(const KvCacheDims& d, float scale) {
  return scale != 0.0f ? scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.head_dim)));
}

}  // namespace pocketlora
