#include "host/ops/attention.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "host/core/error.h"
#include "host/ops/loop_limit.h"
#include "host/ops/storage_variant.h"
#include "runtime/error.h"
#include "shaders/common/attention_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {

using Variant = AttentionOptions::Variant;

// The lean kernels keep head_dim-long rows in registers, sized by a specialization constant.
constexpr std::int64_t kMaxLeanHeadDim = 256;
// Attention keeps its own budget key: its kernels count their loops themselves (lean_loop_iterations).
constexpr const char* kAttentionLoopLimitKey = "attention.loop_limit";

std::uint32_t ceil_div(std::uint64_t a, std::uint64_t b) { return static_cast<std::uint32_t>((a + b - 1) / b); }

AttentionDims check(const char* op, const DeviceTensor& q, const DeviceTensor& k, const DeviceTensor& v,
                    const DeviceTensor* segments, const DeviceTensor& out, const DeviceTensor& lse,
                    std::initializer_list<std::pair<const char*, const DeviceTensor*>> more = {}) {
  const AttentionDims d = check_attention_shapes(op, q.shape, k.shape, v.shape, segments ? &segments->shape : nullptr,
                                                 out.shape, lse.shape);
  // q, k, v, out and the gradients are each f32 or f16 (f32 arithmetic); lse (and the backward's D) stay f32:
  // they carry the softmax's log-sum-exp.
  std::vector<std::pair<const char*, const DeviceTensor*>> all{{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}};
  all.insert(all.end(), more.begin(), more.end());
  for (const auto& [name, t] : all)
    if (t->dtype != DType::F32 && t->dtype != DType::F16)
      throw ShapeError(std::string(op) + ": " + describe(name, *t) + ", expected f32 or f16");
  if (lse.dtype != DType::F32) throw ShapeError(std::string(op) + ": " + describe("lse", lse) + ", expected f32");
  if (segments && segments->dtype != DType::I32)
    throw ShapeError(std::string(op) + ": " + describe("segments", *segments) + ", expected i32");
  return d;
}

// One [heads, T, T] f32 score buffer of the simple variant.
std::uint64_t scores_bytes(const AttentionDims& d, std::int64_t heads) {
  return static_cast<std::uint64_t>(heads) * static_cast<std::uint64_t>(d.T) * static_cast<std::uint64_t>(d.T) *
         sizeof(float);
}

// Query heads per chunk of the simple variant, which holds `buffers` [chunk, T, T] f32 score buffers at a time:
// whole kv-head groups (colmat sums a group's heads into its kv head), as many as keep the chunk's scratch within
// the profile's attention.simple_max_scratch and each buffer within one binding, and at least one group. The
// T^2 scratch of all heads at once (Llama-3.2-1B backward: 64 MiB at 32 heads x 512 tokens) is transient memory
// a phone needs more than the few extra dispatches a chunk costs.
std::int64_t simple_chunk_heads(const vk::Device& dev, const AttentionDims& d, int buffers) {
  const std::uint64_t group_buffer = scores_bytes(d, d.group());
  const auto budget = static_cast<std::uint64_t>(std::max<std::int64_t>(dev.profile().param("attention.simple_max_scratch"), 0));
  const std::uint64_t by_budget = budget / (group_buffer * static_cast<std::uint64_t>(buffers));
  const std::uint64_t by_binding = dev.caps().max_storage_buffer_range / group_buffer;
  const auto groups = static_cast<std::int64_t>(std::min({by_budget, by_binding, static_cast<std::uint64_t>(d.n_kv_heads)}));
  return std::max<std::int64_t>(groups, 1) * d.group();
}

std::uint32_t lean_rows(const vk::Device& dev, const AttentionOptions& opt) {
  const std::uint32_t rows = opt.lean_rows ? opt.lean_rows : dev.profile().u32("attention.lean_rows");
  if (rows == 0 || rows > 16)
    throw InvalidArgument("ops::attention: lean_rows " + std::to_string(rows) + " outside 1..16");
  return rows;
}

// Upper bound of the loop-condition checks one invocation of the lean kernels makes (a loop running n times
// checks n + 1 times; the small loops over rows / key blocks are constant-bounded and unrolled by the driver),
// for drivers that cap them (profile "attention.loop_limit"; lavapipe silently leaves every loop once 65535 is
// reached). Unrolling the head_dim loops would lift the cap but made lavapipe's pipeline compile ~20 s slower.
std::uint64_t lean_loop_iterations(const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt) {
  const std::uint64_t T = static_cast<std::uint64_t>(d.T), group = static_cast<std::uint64_t>(d.group());
  const std::uint64_t c = static_cast<std::uint64_t>(d.head_dim) + 1;  // one loop over head_dim
  const std::uint64_t rows = lean_rows(dev, opt), bk = dev.profile().u32("attention.bk");
  const std::uint64_t blocks = (T + bk - 1) / bk;
  const std::uint64_t fwd = blocks + 1 + blocks * (2 * bk + rows) * c + 2 * rows * c;
  const std::uint64_t dq = T + 1 + T * 2 * c + 3 * rows * c;
  const std::uint64_t dkv = T + 1 + T * (group + 1) + T * group * 2 * c + 3 * rows * c;
  return std::max({fwd, dq, dkv});
}

bool lean_fits(const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt) {
  const std::uint64_t limit = loop_limit(dev, kAttentionLoopLimitKey);
  return d.head_dim <= kMaxLeanHeadDim && (limit == 0 || lean_loop_iterations(dev, d, opt) <= limit);
}

Variant resolve(const char* op, const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt) {
  // The simple kernels' longest loops: colmat's over the group's heads x queries, softmax's three passes over T.
  const std::uint64_t limit = loop_limit(dev, kAttentionLoopLimitKey);
  const auto T = static_cast<std::uint64_t>(d.T), group = static_cast<std::uint64_t>(d.group());
  const std::uint64_t simple_loops = std::max({(group + 1) * (T + 2), 3 * (T + 2), static_cast<std::uint64_t>(d.head_dim) + 1});
  const bool simple_fits = scores_bytes(d, d.group()) <= dev.caps().max_storage_buffer_range &&
                           (limit == 0 || simple_loops <= limit);
  Variant v = opt.variant;
  if (v == Variant::Auto) {
    // The simple variant streams the T^2 scratch several times: worth it only when each score carries enough
    // head_dim work (memory traffic ~T^2, compute ~T^2 * head_dim) and T is short. (Its scratch is bounded by
    // running over head chunks: simple_chunk_heads.)
    const auto& prof = dev.profile();
    const bool simple_pays = d.T <= prof.param("attention.simple_max_t") &&
                             d.head_dim >= prof.param("attention.simple_min_head_dim");
    v = simple_fits && (simple_pays || !lean_fits(dev, d, opt)) ? Variant::Simple : Variant::Lean;
  }
  const std::string dims = "T " + std::to_string(d.T) + ", n_heads " + std::to_string(d.n_heads) + ", head_dim " +
                           std::to_string(d.head_dim);
  if (v == Variant::Simple && !simple_fits)
    throw DeviceLimitError(std::string(op) + ": simple variant needs a [group, T, T] score buffer of " +
                     std::to_string(scores_bytes(d, d.group())) + " bytes (device per-binding limit " +
                     std::to_string(dev.caps().max_storage_buffer_range) + ") and " + std::to_string(simple_loops) +
                     " loop iterations per invocation (profile attention.loop_limit " + std::to_string(limit) +
                     "): too large (" + dims + ")");
  if (v == Variant::Lean && d.head_dim > kMaxLeanHeadDim)
    throw ShapeError(std::string(op) + ": lean variant supports head_dim <= " + std::to_string(kMaxLeanHeadDim) +
                     " (" + dims + ")");
  if (v == Variant::Lean && !lean_fits(dev, d, opt))
    throw DeviceLimitError(std::string(op) + ": lean variant would take " + std::to_string(lean_loop_iterations(dev, d, opt)) +
                     " loop iterations per invocation, above this device's limit of " +
                     std::to_string(loop_limit(dev, kAttentionLoopLimitKey)) + " (profile attention.loop_limit; " +
                     dims + ", n_kv_heads " + std::to_string(d.n_kv_heads) + ")" +
                     (simple_fits ? "" : ", and the simple variant's score buffer does not fit either"));
  return v;
}

shader::AttentionPush make_push(const AttentionDims& d, float scale, const DeviceTensor* segments) {
  return {static_cast<std::uint32_t>(d.T), static_cast<std::uint32_t>(d.n_heads),
          static_cast<std::uint32_t>(d.n_kv_heads), static_cast<std::uint32_t>(d.head_dim),
          segments ? 1u : 0u, scale, 1.0f, 0u, static_cast<std::uint32_t>(d.n_heads), 0u, 0u, 0u};
}

// Unused when there are no segments (has_segments = 0), but a binding must be there: reuse q's.
vk::BufferSlice segment_slice(const DeviceTensor* segments, const DeviceTensor& q) {
  return segments ? segments->buf : q.buf;
}

void check_groups(const char* op, const vk::Device& dev, std::array<std::uint32_t, 3> groups) {
  for (int a = 0; a < 3; ++a)
    if (groups[static_cast<std::size_t>(a)] > dev.caps().max_workgroup_count[static_cast<std::size_t>(a)])
      throw ShapeError(std::string(op) + ": needs " + std::to_string(groups[static_cast<std::size_t>(a)]) +
                       " workgroups along axis " + std::to_string(a) + ", device allows " +
                       std::to_string(dev.caps().max_workgroup_count[static_cast<std::size_t>(a)]));
}

struct Tiles {
  std::uint32_t wx, wy, tm, tn;
  explicit Tiles(const vk::Device& dev)
      : wx(dev.profile().u32("attention.wg_x")),
        wy(dev.profile().u32("attention.wg_y")),
        tm(dev.profile().u32("attention.tm")),
        tn(dev.profile().u32("attention.tn")) {}
  std::vector<std::uint32_t> spec() const { return {wx, wy, tm, tn}; }
  // Grid over a [rows, cols] tile space for each of `z` heads.
  std::array<std::uint32_t, 3> grid(std::int64_t rows, std::int64_t cols, std::int64_t z) const {
    return {ceil_div(static_cast<std::uint64_t>(cols), std::uint64_t{wx} * tn),
            ceil_div(static_cast<std::uint64_t>(rows), std::uint64_t{wy} * tm), static_cast<std::uint32_t>(z)};
  }
};

// One invocation per row (query or key) and head, 1-D grid.
std::array<std::uint32_t, 3> row_grid(std::int64_t rows, std::int64_t heads, std::uint32_t wg) {
  return {ceil_div(static_cast<std::uint64_t>(rows * heads), wg), 1, 1};
}


}  // namespace

Variant attention_variant(const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt) {
  return resolve("ops::attention", dev, d, opt);
}

std::uint64_t attention_scratch_bytes(const vk::Device& dev, const AttentionDims& d, const AttentionOptions& opt,
                                      bool backward) {
  if (resolve("ops::attention", dev, d, opt) == Variant::Simple) {
    const int buffers = backward ? 2 : 1;
    return arena_bytes(dev, scores_bytes(d, simple_chunk_heads(dev, d, buffers))) * static_cast<std::uint64_t>(buffers);
  }
  return backward ? arena_bytes(dev, static_cast<std::uint64_t>(d.T * d.n_heads) * sizeof(float)) : 0;
}

void attention(vk::Sequence& seq, vk::Arena& scratch, const DeviceTensor& q, const DeviceTensor& k,
               const DeviceTensor& v, const DeviceTensor* segments, const DeviceTensor& out, const DeviceTensor& lse,
               const AttentionOptions& opt) {
  const char* op = "ops::attention";
  const AttentionDims d = check(op, q, k, v, segments, out, lse);
  if (d.T == 0) return;
  vk::Device& dev = seq.device();
  shader::AttentionPush push = make_push(d, attention_scale(d, opt), segments);
  const vk::BufferSlice seg = segment_slice(segments, q);
  const std::uint32_t wg = dev.profile().u32("attention.wg");
  constexpr auto push_size = static_cast<std::uint32_t>(sizeof(shader::AttentionPush));

  if (resolve(op, dev, d, opt) == Variant::Lean) {
    const auto hd = static_cast<std::uint32_t>(d.head_dim);
    const std::uint32_t rows = lean_rows(dev, opt);
    const StorageVariant sv = storage_variant(dev, op, shaders::attention_lean_fwd, shaders::attention_lean_fwd_f16,
                                              {wg, hd, dev.profile().u32("attention.bk"), rows},
                                              {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}});
    const auto& pipe = dev.pipeline({sv.shader, sv.spec, 6, push_size});
    const auto grid = row_grid((d.T + rows - 1) / rows, d.n_heads, wg);
    check_groups(op, dev, grid);
    seq.dispatch(pipe, {vk::reads(q.buf), vk::reads(k.buf), vk::reads(v.buf), vk::reads(seg), vk::writes(out.buf),
                        vk::writes(lse.buf)},
                 push, grid, "attention.lean_fwd");
    return;
  }

  const Tiles t(dev);
  const std::int64_t chunk = simple_chunk_heads(dev, d, 1);
  for (const auto& g : {t.grid(d.T, d.T, chunk), t.grid(d.T, d.head_dim, chunk), row_grid(d.T, chunk, wg)})
    check_groups(op, dev, g);
  const vk::BufferSlice S = scratch.allocate(scores_bytes(d, chunk), "attention scores [head chunk, T, T]");
  const StorageVariant scores = storage_variant(dev, op, shaders::attention_scores, shaders::attention_scores_f16,
                                                t.spec(), {{"q", &q}, {"k", &k}});
  const StorageVariant pv = storage_variant(dev, op, shaders::attention_rowmat, shaders::attention_rowmat_f16, t.spec(),
                                            {{"v", &v}, {"out", &out}});
  for (std::int64_t h0 = 0; h0 < d.n_heads; h0 += chunk) {
    const std::int64_t heads = std::min(chunk, d.n_heads - h0);
    push.head_base = static_cast<std::uint32_t>(h0);
    push.head_count = static_cast<std::uint32_t>(heads);
    seq.dispatch(dev.pipeline({scores.shader, scores.spec, 3, push_size}),
                 {vk::reads(q.buf), vk::reads(k.buf), vk::writes(S)}, push, t.grid(d.T, d.T, heads), "attention.scores");
    seq.dispatch(dev.pipeline({shaders::attention_softmax, {wg}, 3, push_size}),
                 {vk::writes(S), vk::reads(seg), vk::writes(lse.buf)}, push, row_grid(d.T, heads, wg),
                 "attention.softmax");
    seq.dispatch(dev.pipeline({pv.shader, pv.spec, 3, push_size}),
                 {vk::reads(S), vk::reads(v.buf), vk::writes(out.buf)}, push, t.grid(d.T, d.head_dim, heads),
                 "attention.pv");
  }
}

void attention_backward(vk::Sequence& seq, vk::Arena& scratch, const DeviceTensor& q, const DeviceTensor& k,
                        const DeviceTensor& v, const DeviceTensor* segments, const DeviceTensor& out,
                        const DeviceTensor& lse, const DeviceTensor& dout, const DeviceTensor& dq,
                        const DeviceTensor& dk, const DeviceTensor& dv, const AttentionOptions& opt) {
  const char* op = "ops::attention_backward";
  const AttentionDims d = check(op, q, k, v, segments, out, lse, {{"dout", &dout}, {"dq", &dq}, {"dk", &dk}, {"dv", &dv}});
  if (dout.shape != q.shape || dq.shape != q.shape || dk.shape != k.shape || dv.shape != v.shape)
    throw ShapeError(std::string(op) + ": " + describe("dout", dout) + " / " + describe("dq", dq) + " must match " +
                     describe("q", q) + ", " + describe("dk", dk) + " / " + describe("dv", dv) + " must match " +
                     describe("k", k));
  if (d.T == 0) return;
  vk::Device& dev = seq.device();
  const float scale = attention_scale(d, opt);
  shader::AttentionPush push = make_push(d, scale, segments);
  const vk::BufferSlice seg = segment_slice(segments, q);
  const std::uint32_t wg = dev.profile().u32("attention.wg");
  constexpr auto push_size = static_cast<std::uint32_t>(sizeof(shader::AttentionPush));

  if (resolve(op, dev, d, opt) == Variant::Lean) {
    const auto hd = static_cast<std::uint32_t>(d.head_dim);
    const std::uint32_t rows = lean_rows(dev, opt);
    const std::int64_t blocks = (d.T + rows - 1) / rows;
    const auto qgrid = row_grid(blocks, d.n_heads, wg), kgrid = row_grid(blocks, d.n_kv_heads, wg);
    check_groups(op, dev, qgrid);
    const vk::BufferSlice D = scratch.allocate(static_cast<VkDeviceSize>(d.T * d.n_heads) * sizeof(float),
                                               "attention D = rowsum(dout * out) [T, n_heads]");
    const StorageVariant vdq =
        storage_variant(dev, op, shaders::attention_lean_dq, shaders::attention_lean_dq_f16, {wg, hd, rows},
                        {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout}, {"dq", &dq}});
    const StorageVariant vdkv =
        storage_variant(dev, op, shaders::attention_lean_dkv, shaders::attention_lean_dkv_f16, {wg, hd, rows},
                        {{"q", &q}, {"k", &k}, {"v", &v}, {"dout", &dout}, {"dk", &dk}, {"dv", &dv}});
    seq.dispatch(dev.pipeline({vdq.shader, vdq.spec, 9, push_size}),
                 {vk::reads(q.buf), vk::reads(k.buf), vk::reads(v.buf), vk::reads(seg), vk::reads(out.buf),
                  vk::reads(lse.buf), vk::reads(dout.buf), vk::writes(D), vk::writes(dq.buf)},
                 push, qgrid, "attention.lean_dq");
    seq.dispatch(dev.pipeline({vdkv.shader, vdkv.spec, 9, push_size}),
                 {vk::reads(q.buf), vk::reads(k.buf), vk::reads(v.buf), vk::reads(seg), vk::reads(lse.buf),
                  vk::reads(dout.buf), vk::reads(D), vk::writes(dk.buf), vk::writes(dv.buf)},
                 push, kgrid, "attention.lean_dkv");
    return;
  }

  const Tiles t(dev);
  const std::int64_t chunk = simple_chunk_heads(dev, d, 2);
  for (const auto& g : {t.grid(d.T, d.T, chunk), t.grid(d.T, d.head_dim, chunk)}) check_groups(op, dev, g);
  const vk::BufferSlice P = scratch.allocate(scores_bytes(d, chunk), "attention probabilities [head chunk, T, T]");
  const vk::BufferSlice dS = scratch.allocate(scores_bytes(d, chunk), "attention score gradient [head chunk, T, T]");
  const StorageVariant pg =
      storage_variant(dev, op, shaders::attention_probs_grad, shaders::attention_probs_grad_f16, t.spec(),
                      {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout}});
  // rowmat / colmat: the scratch A is f32; B and the output as stored.
  const StorageVariant vdq = storage_variant(dev, op, shaders::attention_rowmat, shaders::attention_rowmat_f16,
                                             t.spec(), {{"k", &k}, {"dq", &dq}});
  const StorageVariant vdk = storage_variant(dev, op, shaders::attention_colmat, shaders::attention_colmat_f16,
                                             t.spec(), {{"q", &q}, {"dk", &dk}});
  const StorageVariant vdv = storage_variant(dev, op, shaders::attention_colmat, shaders::attention_colmat_f16,
                                             t.spec(), {{"dout", &dout}, {"dv", &dv}});
  for (std::int64_t h0 = 0; h0 < d.n_heads; h0 += chunk) {
    const std::int64_t heads = std::min(chunk, d.n_heads - h0);
    push.head_base = static_cast<std::uint32_t>(h0);
    push.head_count = static_cast<std::uint32_t>(heads);
    const auto qgrid = t.grid(d.T, d.head_dim, heads), kgrid = t.grid(d.T, d.head_dim, heads / d.group());
    push.alpha = 1.0f;
    seq.dispatch(dev.pipeline({pg.shader, pg.spec, 9, push_size}),
                 {vk::reads(q.buf), vk::reads(k.buf), vk::reads(v.buf), vk::reads(out.buf), vk::reads(dout.buf),
                  vk::reads(lse.buf), vk::reads(seg), vk::writes(P), vk::writes(dS)},
                 push, t.grid(d.T, d.T, heads), "attention.probs_grad");
    push.alpha = scale;
    seq.dispatch(dev.pipeline({vdq.shader, vdq.spec, 3, push_size}),
                 {vk::reads(dS), vk::reads(k.buf), vk::writes(dq.buf)}, push, qgrid, "attention.dq");
    seq.dispatch(dev.pipeline({vdk.shader, vdk.spec, 3, push_size}),
                 {vk::reads(dS), vk::reads(q.buf), vk::writes(dk.buf)}, push, kgrid, "attention.dk");
    push.alpha = 1.0f;
    seq.dispatch(dev.pipeline({vdv.shader, vdv.spec, 3, push_size}),
                 {vk::reads(P), vk::reads(dout.buf), vk::writes(dv.buf)}, push, kgrid, "attention.dv");
  }
}

}  // namespace pocketlora::ops
