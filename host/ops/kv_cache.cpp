#include "host/ops/kv_cache.h"

#include <string>

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "shaders/common/kv_cache_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {

// The kernel keeps head_dim-long rows in registers, sized by a specialization constant (as the lean attention).
constexpr std::int64_t kMaxHeadDim = 256;

shader::KvCachePush make_push(const KvCacheDims& d, float scale) {
  const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
  return {u(d.T), u(d.capacity), u(d.n_heads), u(d.n_kv_heads), u(d.head_dim), scale, 0, 0};
}

void require_positions(const char* op, const DeviceTensor& positions) {
  if (positions.dtype != DType::I32)
    throw ShapeError(std::string(op) + ": " + describe("positions", positions) + ", expected i32");
}

}  // namespace

void kv_cache_write(vk::Sequence& seq, const DeviceTensor& k, const DeviceTensor& v, const DeviceTensor& positions,
                    const DeviceTensor& k_cache, const DeviceTensor& v_cache) {
  const char* op = "ops::kv_cache_write";
  const KvCacheDims d = check_kv_cache_write_shapes(op, k.shape, v.shape, positions.shape, k_cache.shape,
                                                    v_cache.shape);
  require_f32(op, {{"k", &k}, {"v", &v}, {"k_cache", &k_cache}, {"v_cache", &v_cache}});
  require_positions(op, positions);
  if (d.T == 0) return;
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const auto push = make_push(d, 0.0f);
  seq.dispatch(dev.pipeline({shaders::attention_kv_cache_write, {wg}, 5, sizeof(push)}),
               {vk::reads(k.buf), vk::reads(v.buf), vk::reads(positions.buf), vk::writes(k_cache.buf),
                vk::writes(v_cache.buf)},
               push, grid_1d(dev, static_cast<std::uint64_t>(k.numel()), wg), "kv_cache_write");
}

void kv_cache_attention(vk::Sequence& seq, const DeviceTensor& q, const DeviceTensor& k_cache,
                        const DeviceTensor& v_cache, const DeviceTensor& positions, const DeviceTensor& out,
                        float scale) {
  const char* op = "ops::kv_cache_attention";
  const KvCacheDims d =
      check_kv_cache_attention_shapes(op, q.shape, k_cache.shape, v_cache.shape, positions.shape, out.shape);
  require_f32(op, {{"q", &q}, {"k_cache", &k_cache}, {"v_cache", &v_cache}, {"out", &out}});
  require_positions(op, positions);
  if (d.head_dim > kMaxHeadDim)
    throw ShapeError(std::string(op) + ": head_dim " + std::to_string(d.head_dim) + " above the kernel's " +
                     std::to_string(kMaxHeadDim));
  if (d.T == 0) return;
  vk::Device& dev = seq.device();
  // The longest invocation attends over the whole cache (see shaders/attention/kv_cache_attention.comp).
  const auto keys = static_cast<std::uint64_t>(d.capacity), hd = static_cast<std::uint64_t>(d.head_dim);
  check_loop_checks(dev, op, "keys of a " + std::to_string(d.capacity) + "-position cache x head_dim " +
                                 std::to_string(d.head_dim),
                    loop_checks(keys) + keys * 2 * loop_checks(hd) + 2 * loop_checks(hd));
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const auto push = make_push(d, kv_cache_attention_scale(d, scale));
  seq.dispatch(dev.pipeline({shaders::attention_kv_cache_attention, {wg, static_cast<std::uint32_t>(d.head_dim)}, 5,
                             sizeof(push)}),
               {vk::reads(q.buf), vk::reads(k_cache.buf), vk::reads(v_cache.buf), vk::reads(positions.buf),
                vk::writes(out.buf)},
               push, grid_1d(dev, static_cast<std::uint64_t>(d.T * d.n_heads), wg), "kv_cache_attention");
}

}  // namespace pocketlora::ops
