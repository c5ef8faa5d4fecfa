#include "host/ops/cross_entropy.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {
shader::CrossEntropyPush make_push(const DeviceTensor& logits, std::int64_t vocab_offset, std::uint32_t flags) {
  return {static_cast<std::uint32_t>(logits.dim(0)), static_cast<std::uint32_t>(logits.dim(1)),
          static_cast<std::uint32_t>(vocab_offset), flags, kIgnoreIndex, 0, 0, 0};
}

// Per-token tensors (stats [T, 4], lse [T]) must match the labels' T.
void check(const char* op, const DeviceTensor& logits, const DeviceTensor& labels, const DeviceTensor& per_token,
           std::int64_t per_token_rank) {
  check_cross_entropy(op, logits.shape, labels.shape);
  if (logits.dtype != DType::F32 || labels.dtype != DType::I32 || per_token.dtype != DType::F32 ||
      per_token.rank() != per_token_rank || per_token.dim(0) != labels.numel())
    throw ShapeError(std::string(op) + ": " + describe("logits", logits) + ", " + describe("labels", labels) + ", " +
                     describe(per_token_rank == 2 ? "stats" : "lse", per_token) +
                     " — expected f32 logits [T, chunk], i32 labels [T] and f32 " +
                     (per_token_rank == 2 ? "stats [T, 4]" : "lse [T]"));
}

void check_scalars(const char* op, const char* what, const DeviceTensor& t, std::int64_t n) {
  if (t.dtype != DType::F32 || t.numel() != n)
    throw ShapeError(std::string(op) + ": " + describe(what, t) + " — expected f32 [" + std::to_string(n) + "]");
}
}  // namespace

DeviceTensor make_cross_entropy_stats(vk::Arena& arena, std::int64_t tokens) {
  return allocate(arena, {tokens, 4}, DType::F32, "cross-entropy stats");
}

std::uint64_t cross_entropy_stats_bytes(const vk::Device& dev, std::int64_t tokens) {
  return arena_bytes(dev, static_cast<std::uint64_t>(tokens) * 4 * sizeof(float));
}

void cross_entropy_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                         std::int64_t vocab_offset, bool first_chunk, const DeviceTensor& stats) {
  check("ops::cross_entropy_chunk", logits, labels, stats, 2);
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nn.wg");
  const auto& pipe = dev.pipeline({shaders::nn_cross_entropy_stats, {wg}, 3, sizeof(shader::CrossEntropyPush)});
  // Each invocation walks its row's columns twice (max, then sum); a chunk wider than the device's loop limit
  // allows is walked in column ranges, each continuing the online log-sum-exp of the previous one.
  const auto width = static_cast<std::uint64_t>(logits.dim(1));
  const std::uint64_t span = loop_span(dev, "ops::cross_entropy_chunk", "the two loops over a vocabulary chunk", 2, 2);
  for (const auto& [b, e] : spans(width, span)) {
    auto push = make_push(logits, vocab_offset, first_chunk && b == 0 ? CE_FIRST_CHUNK : 0u);
    push.begin = static_cast<std::uint32_t>(b);
    push.end = static_cast<std::uint32_t>(e);
    seq.dispatch(pipe, {vk::reads(logits.buf), vk::reads(labels.buf), vk::writes(stats.buf)}, push,
                 grid_1d(dev, static_cast<std::uint64_t>(logits.dim(0)), wg), "cross_entropy_chunk");
  }
}

void cross_entropy_finalize(vk::Sequence& seq, const DeviceTensor& labels, const DeviceTensor& stats,
                            const DeviceTensor& lse, const DeviceTensor& totals) {
  const char* op = "ops::cross_entropy_finalize";
  if (labels.rank() != 1 || labels.dtype != DType::I32 || stats.shape != Shape{labels.numel(), 4} ||
      lse.shape != labels.shape || lse.dtype != DType::F32)
    throw ShapeError(std::string(op) + ": " + describe("labels", labels) + ", " + describe("stats", stats) + ", " +
                     describe("lse", lse) + " — expected i32 labels [T], f32 stats [T, 4] and f32 lse [T]");
  check_scalars(op, "totals", totals, 2);
  vk::Device& dev = seq.device();
  const auto& pipe = dev.pipeline({shaders::nn_cross_entropy_finalize, {}, 4, sizeof(shader::CrossEntropyPush)});
  // One invocation sums the tokens in order onto the totals; past the device's loop limit it does so over token
  // ranges, one dispatch each (the same sum as one pass).
  const auto tokens = static_cast<std::uint64_t>(labels.numel());
  for (const auto& [b, e] : spans(tokens, loop_span(dev, op, "the loop over tokens", 1, 1))) {
    shader::CrossEntropyPush push{static_cast<std::uint32_t>(tokens), 0, 0, 0, kIgnoreIndex, 0,
                                  static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(e)};
    seq.dispatch(pipe, {vk::reads(stats.buf), vk::reads(labels.buf), vk::writes(lse.buf), vk::writes(totals.buf)},
                 push, {1, 1, 1}, "cross_entropy_finalize");
  }
}

void cross_entropy_backward_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                                  std::int64_t vocab_offset, const DeviceTensor& lse, const DeviceTensor& scale,
                                  const DeviceTensor& dlogits) {
  const char* op = "ops::cross_entropy_backward_chunk";
  check(op, logits, labels, lse, 1);
  check_scalars(op, "scale", scale, 1);
  if (dlogits.shape != logits.shape || dlogits.dtype != DType::F32)
    throw ShapeError(std::string(op) + ": " + describe("dlogits", dlogits) + " must match " +
                     describe("logits", logits));
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const auto push = make_push(logits, vocab_offset, 0);
  seq.dispatch(dev.pipeline({shaders::nn_cross_entropy_backward, {wg}, 5, sizeof(push)}),
               {vk::reads(logits.buf), vk::reads(labels.buf), vk::reads(lse.buf), vk::reads(scale.buf),
                vk::writes(dlogits.buf)},
               push, grid_1d(dev, static_cast<std::uint64_t>(logits.numel()), wg), "cross_entropy_backward");
}

}  // namespace pocketlora::ops
