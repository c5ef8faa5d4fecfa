#include "host/ops/embedding.h"

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "shaders/common/nn_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {
// f16_table_ok: the lookup also reads an f16 table; the backward writes f32 only.
void check(const char* op, const DeviceTensor& ids, const RowChunkedTensor& table, const DeviceTensor& out,
           bool f16_table_ok) {
  check_embedding(op, ids.shape, table.shape, out.shape);
  const bool table_ok = table.dtype == DType::F32 || (f16_table_ok && table.dtype == DType::F16);
  if (ids.dtype != DType::I32 || !table_ok || out.dtype != DType::F32)
    throw ShapeError(std::string(op) + ": " + describe("ids", ids) + ", table " + dtype_name(table.dtype) + ", " +
                     describe("out", out) + " — expected i32, " + (f16_table_ok ? "f32 or f16" : "f32") + ", f32");
}
}  // namespace

void embedding(vk::Sequence& seq, const DeviceTensor& ids, const RowChunkedTensor& table, const DeviceTensor& out) {
  check("ops::embedding", ids, table, out, true);
  vk::Device& dev = seq.device();
  const bool f16 = table.dtype == DType::F16;
  if (f16 && !dev.caps().storage_16bit)
    throw DeviceLimitError("ops::embedding: an f16 table needs storageBuffer16BitAccess, which '" + dev.caps().name +
                           "' lacks");
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  seq.fill(out.buf, 0);
  const auto& pipe = dev.pipeline(
      {f16 ? shaders::nn_embedding_f16 : shaders::nn_embedding, {wg}, 3, sizeof(shader::EmbeddingPush)});
  for (std::size_t c = 0; c < table.chunks.size(); ++c) {
    shader::EmbeddingPush push{static_cast<std::uint32_t>(ids.numel()), static_cast<std::uint32_t>(table.shape[1]),
                               static_cast<std::uint32_t>(static_cast<std::int64_t>(c) * table.rows_per_chunk),
                               static_cast<std::uint32_t>(table.chunks[c].dim(0))};
    seq.dispatch(pipe, {vk::reads(ids.buf), vk::reads(table.chunks[c].buf), vk::writes(out.buf)}, push,
                 grid_1d(dev, static_cast<std::uint64_t>(out.numel()), wg), "embedding");
  }
}

void embedding_backward(vk::Sequence& seq, const DeviceTensor& ids, const DeviceTensor& dout,
                        const RowChunkedTensor& dtable) {
  check("ops::embedding_backward", ids, dtable, dout, false);
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  const auto& pipe = dev.pipeline({shaders::nn_embedding_backward, {wg}, 3, sizeof(shader::EmbeddingPush)});
  // Each invocation (one column) adds the tokens' gradients in token order; past the device's loop limit the
  // tokens are walked in ranges, one dispatch each, in the same order (the same sums).
  const auto tokens = static_cast<std::uint64_t>(ids.numel());
  const auto ranges = spans(tokens, loop_span(dev, "ops::embedding_backward", "the loop over tokens", 1, 1));
  for (std::size_t c = 0; c < dtable.chunks.size(); ++c)
    for (const auto& [b, e] : ranges) {
      shader::EmbeddingPush push{static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(dtable.shape[1]),
                                 static_cast<std::uint32_t>(static_cast<std::int64_t>(c) * dtable.rows_per_chunk),
                                 static_cast<std::uint32_t>(dtable.chunks[c].dim(0)), static_cast<std::uint32_t>(b)};
      seq.dispatch(pipe, {vk::reads(ids.buf), vk::reads(dout.buf), vk::writes(dtable.chunks[c].buf)}, push,
                   grid_1d(dev, static_cast<std::uint64_t>(dtable.shape[1]), wg), "embedding_backward");
    }
}

}  // namespace pocketlora::ops
