#include "host/ops/cross_entropy.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {
shader::CrossEntropyPush make_push(const DeviceTensor& logits, std::int64_t vocab_offset, std::uint32_t flags,
                                   float grad_scale) {
  return {static_cast<std::uint32_t>(logits.dim(0)), static_cast<std::uint32_t>(logits.dim(1)),
          static_cast<std::uint32_t>(vocab_offset), flags, kIgnoreIndex, grad_scale, 0, 0};
}

void check(const char* op, const DeviceTensor& logits, const DeviceTensor& labels, const CrossEntropyState& st) {
  check_cross_entropy(op, logits.shape, labels.shape);
  if (logits.dtype != DType::F32 || labels.dtype != DType::I32 || st.lse.numel() != labels.numel())
    throw ShapeError(std::string(op) + ": " + describe("logits", logits) + ", " + describe("labels", labels) +
                     ", state for " + std::to_string(st.lse.numel()) + " tokens — expected f32 logits [T, chunk], "
                     "i32 labels [T] and a state made for T tokens");
}
}  // namespace

CrossEntropyState make_cross_entropy_state(vk::Arena& arena, std::int64_t tokens) {
  return {allocate(arena, {tokens, 4}, DType::F32, "cross-entropy stats"),
          allocate(arena, {tokens}, DType::F32, "cross-entropy lse"),
          allocate(arena, {4}, DType::F32, "cross-entropy result")};
}

void cross_entropy_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                         std::int64_t vocab_offset, bool first_chunk, const CrossEntropyState& st) {
  check("ops::cross_entropy_chunk", logits, labels, st);
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("nn.wg");
  const auto& pipe = dev.pipeline({shaders::nn_cross_entropy_stats, {wg}, 3, sizeof(shader::CrossEntropyPush)});
  // Each invocation walks its row's columns twice (max, then sum); a chunk wider than the device's loop limit
  // allows is walked in column ranges, each continuing the online log-sum-exp of the previous one.
  const auto width = static_cast<std::uint64_t>(logits.dim(1));
  const std::uint64_t span = loop_span(dev, "ops::cross_entropy_chunk", "the two loops over a vocabulary chunk", 2, 2);
  for (const auto& [b, e] : spans(width, span)) {
    auto push = make_push(logits, vocab_offset, first_chunk && b == 0 ? CE_FIRST_CHUNK : 0u, 1.0f);
    push.begin = static_cast<std::uint32_t>(b);
    push.end = static_cast<std::uint32_t>(e);
    seq.dispatch(pipe, {vk::reads(logits.buf), vk::reads(labels.buf), vk::writes(st.stats.buf)}, push,
                 grid_1d(dev, static_cast<std::uint64_t>(logits.dim(0)), wg), "cross_entropy_chunk");
  }
}

void cross_entropy_finalize(vk::Sequence& seq, const DeviceTensor& labels, const CrossEntropyState& st) {
  if (labels.rank() != 1 || labels.dtype != DType::I32 || st.lse.numel() != labels.numel())
    throw ShapeError("ops::cross_entropy_finalize: " + describe("labels", labels) + " does not fit a state for " +
                     std::to_string(st.lse.numel()) + " tokens");
  vk::Device& dev = seq.device();
  const auto& pipe = dev.pipeline({shaders::nn_cross_entropy_finalize, {}, 4, sizeof(shader::CrossEntropyPush)});
  // One invocation sums the tokens in order; past the device's loop limit it does so over token ranges, one
  // dispatch each, carrying the running total and count (the same sum as one pass).
  const auto tokens = static_cast<std::uint64_t>(labels.numel());
  const auto ranges = spans(tokens, loop_span(dev, "ops::cross_entropy_finalize", "the loop over tokens", 1, 1));
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const std::uint32_t flags = (i == 0 ? CE_FIRST_CHUNK : 0u) | (i + 1 == ranges.size() ? CE_LAST_RANGE : 0u);
    shader::CrossEntropyPush push{static_cast<std::uint32_t>(tokens), 0, 0, flags, kIgnoreIndex, 1.0f,
                                  static_cast<std::uint32_t>(ranges[i].first),
                                  static_cast<std::uint32_t>(ranges[i].second)};
    seq.dispatch(pipe, {vk::reads(st.stats.buf), vk::reads(labels.buf), vk::writes(st.lse.buf), vk::writes(st.result.buf)},
                 push, {1, 1, 1}, "cross_entropy_finalize");
  }
}

void cross_entropy_backward_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                                  std::int64_t vocab_offset, const CrossEntropyState& st, const DeviceTensor& dlogits,
                                  float grad_scale) {
  check("ops::cross_entropy_backward_chunk", logits, labels, st);
  if (dlogits.shape != logits.shape || dlogits.dtype != DType::F32)
    throw ShapeError("ops::cross_entropy_backward_chunk: " + describe("dlogits", dlogits) + " must match " +
                     describe("logits", logits));
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  auto push = make_push(logits, vocab_offset, 0, grad_scale);
  seq.dispatch(dev.pipeline({shaders::nn_cross_entropy_backward, {wg}, 5, sizeof(push)}),
               {vk::reads(logits.buf), vk::reads(labels.buf), vk::reads(st.lse.buf), vk::reads(st.result.buf),
                vk::writes(dlogits.buf)},
               push, grid_1d(dev, static_cast<std::uint64_t>(logits.numel()), wg), "cross_entropy_backward");
}

}  // namespace pocketlora::ops
