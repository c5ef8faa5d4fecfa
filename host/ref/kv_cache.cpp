#include "host/ref/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/ref/float_kernel.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

void require_f32(const char* op, std::initializer_list<const Tensor*> ts, const Tensor& positions) {
  if (!all_contiguous_f32(ts)) throw ShapeError(std::string(op) + ": q/k/v, caches and out must be contiguous f32");
  if (positions.dtype() != DType::I32) throw ShapeError(std::string(op) + ": positions must be i32");
}

// As the kernels: a position outside the cache is clamped into it (the caller's contract forbids it).
std::int64_t clamp_position(std::int32_t p, std::int64_t capacity) {
  return std::clamp<std::int64_t>(p, 0, capacity - 1);
}

}  // namespace

void kv_cache_write(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache) {
  const KvCacheDims d = check_kv_cache_write_shapes("ref::kv_cache_write", k.shape(), v.shape(), positions.shape(),
                                                    k_cache.shape(), v_cache.shape());
  require_f32("ref::kv_cache_write", {&k, &v, &k_cache, &v_cache}, positions);
  const std::int64_t row = d.n_kv_heads * d.head_dim;
  const std::int32_t* pos = positions.data<std::int32_t>();
  for (std::int64_t t = 0; t < d.T; ++t) {
    const std::int64_t p = clamp_position(pos[t], d.capacity);
    std::memcpy(k_cache.data<float>() + p * row, k.data<float>() + t * row, static_cast<std::size_t>(row) * 4);
    std::memcpy(v_cache.data<float>() + p * row, v.data<float>() + t * row, static_cast<std::size_t>(row) * 4);
  }
}

void kv_cache_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& positions,
                        Tensor& out, float scale) {
  const KvCacheDims d = check_kv_cache_attention_shapes("ref::kv_cache_attention", q.shape(), k_cache.shape(),
                                                        v_cache.shape(), positions.shape(), out.shape());
  require_f32("ref::kv_cache_attention", {&q, &k_cache, &v_cache, &out}, positions);
  const double s = kv_cache_attention_scale(d, scale);
  const std::int64_t D = d.head_dim, H = d.n_heads, group = d.n_heads / d.n_kv_heads, kstride = d.n_kv_heads * D;
  const float *qp = q.data<float>(), *kp = k_cache.data<float>(), *vp = v_cache.data<float>();
  const std::int32_t* pos = positions.data<std::int32_t>();
  float* op = out.data<float>();
  // One (query, head) per item; each reads keys 0..position.
  parallel_for(d.T * H, d.capacity * D, [&](std::int64_t i0, std::int64_t i1) {
    std::vector<double> scores, acc(static_cast<std::size_t>(D));
    for (std::int64_t item = i0; item < i1; ++item) {
      const std::int64_t t = item / H, h = item % H, g = h / group;
      const std::int64_t last = clamp_position(pos[t], d.capacity);
      const float* qr = qp + (t * H + h) * D;
      scores.assign(static_cast<std::size_t>(last + 1), 0.0);
      double m = -INFINITY;
      for (std::int64_t j = 0; j <= last; ++j) {
        const float* kr = kp + j * kstride + g * D;
        double dot = 0;
        for (std::int64_t e = 0; e < D; ++e) dot += static_cast<double>(qr[e]) * kr[e];
        scores[static_cast<std::size_t>(j)] = s * dot;
        m = std::max(m, s * dot);
      }
      double l = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::int64_t j = 0; j <= last; ++j) {
        const double p = std::exp(scores[static_cast<std::size_t>(j)] - m);
        l += p;
        const float* vr = vp + j * kstride + g * D;
        for (std::int64_t e = 0; e < D; ++e) acc[static_cast<std::size_t>(e)] += p * vr[e];
      }
      for (std::int64_t e = 0; e < D; ++e) op[(t * H + h) * D + e] = static_cast<float>(acc[static_cast<std::size_t>(e)] / l);
    }
  });
}

}  // namespace pocketlora::ref
