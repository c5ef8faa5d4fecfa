#include "host/ops/optimizer.h"

#include <algorithm>
#include <vector>

#include "host/core/error.h"
#include "host/ops/grid.h"
#include "host/ops/loop_limit.h"
#include "shaders/common/optim_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::ops {

namespace {
constexpr std::uint32_t kNormChunk = 1024;  // elements per partial sum

DeviceTensor zeros(vk::Device& dev, vk::Arena& arena, const Shape& s, const std::string& what) {
  DeviceTensor t = allocate(arena, s, DType::F32, what);
  std::vector<float> z(static_cast<std::size_t>(std::max<std::int64_t>(1, t.numel())), 0.0f);
  dev.upload(t.buf, z.data(), t.nbytes());
  return t;
}

// Elements per partial sum. Where the device caps loop iterations per invocation, both loops must fit: a
// partial's own loop (chunk + 1 checks) and the one-invocation reduce over tensors and their partials
// (tensors + 1 + sum(partials + 1) checks; each tensor adds < 3 beyond elements / chunk: its loop's exit check,
// its outer iteration and rounding its partial count up). The default is kept where it fits, else clamped.
std::uint32_t grad_norm_chunk_size(const vk::Device& dev, const std::vector<DeviceTensor>& grads) {
  std::uint64_t elements = 0;
  for (auto& g : grads) {
    if (g.dtype != DType::F32) throw ShapeError("ops::grad_norm: " + describe("gradient", g) + " must be f32");
    elements += static_cast<std::uint64_t>(g.numel());
  }
  const std::uint64_t tensors = grads.size(), limit = loop_limit(dev);
  std::uint64_t chunk = kNormChunk;
  if (limit > 0) {
    const std::uint64_t budget = limit > 3 * tensors + 1 ? limit - 3 * tensors - 1 : 1;
    const std::uint64_t fewest = std::max<std::uint64_t>(1, (elements + budget - 1) / budget);
    chunk = std::max(std::min(chunk, limit - 1), fewest);
  }
  std::uint64_t reduce = loop_checks(tensors);
  for (auto& g : grads) reduce += loop_checks((static_cast<std::uint64_t>(g.numel()) + chunk - 1) / chunk);
  const std::string sizes = std::to_string(tensors) + " tensors, " + std::to_string(elements) + " elements";
  check_loop_checks(dev, "ops::grad_norm", "the reduce over " + sizes, reduce);
  check_loop_checks(dev, "ops::grad_norm", "a partial sum of " + std::to_string(chunk) + " elements (" + sizes + ")",
                    loop_checks(chunk));
  return static_cast<std::uint32_t>(chunk);
}
}  // namespace

DeviceOptimizerState make_optimizer_state(vk::Device& dev, vk::Arena& arena, const OptimizerConfig& cfg,
                                          const Shape& shape, const std::string& name) {
  DeviceOptimizerState s;
  if (cfg.kind == OptimizerKind::Adafactor) {
    if (shape.size() != 2)
      throw ShapeError("adafactor factors matrices only; parameter '" + name + "' " + shape_str(shape) + " is not 2-D");
    s.row = zeros(dev, arena, {shape[0]}, name + ".adafactor_row");
    s.col = zeros(dev, arena, {shape[1]}, name + ".adafactor_col");
    s.scratch = zeros(dev, arena, {2}, name + ".adafactor_scratch");
  } else {
    s.m = zeros(dev, arena, shape, name + ".m");
    if (cfg.kind == OptimizerKind::AdamW) s.v = zeros(dev, arena, shape, name + ".v");
  }
  return s;
}

DeviceTensor make_grad_stats(vk::Arena& arena) {
  return allocate(arena, {GRAD_STATS_WORDS}, DType::I32, "grad stats");
}

void grad_norm(vk::Sequence& seq, vk::Arena& scratch, const std::vector<DeviceTensor>& grads, float max_norm,
               const DeviceTensor& stats) {
  if (grads.empty()) throw InvalidArgument("ops::grad_norm: no gradient tensors");
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("optim.wg");
  const std::uint32_t chunk_size = grad_norm_chunk_size(dev, grads);
  std::vector<std::uint32_t> table;
  std::uint32_t chunks = 0;
  for (auto& g : grads) {
    const auto c = static_cast<std::uint32_t>((g.numel() + chunk_size - 1) / chunk_size);
    table.push_back(chunks);
    table.push_back(c);
    chunks += c;
  }
  DeviceTensor partial = allocate(scratch, {std::max<std::uint32_t>(1, chunks), 2}, DType::F32, "grad norm partials");
  DeviceTensor tab = allocate(scratch, {static_cast<std::int64_t>(table.size())}, DType::I32, "grad norm table");
  dev.upload(tab.buf, table.data(), table.size() * 4);
  const auto& part = dev.pipeline({shaders::optim_grad_norm_partial, {wg}, 2, sizeof(shader::GradNormPush)});
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (grads[i].numel() == 0) continue;
    shader::GradNormPush push{static_cast<std::uint32_t>(grads[i].numel()), table[2 * i], chunk_size, 0, 0.0f, 0, 0, 0};
    seq.dispatch(part, {vk::reads(grads[i].buf), vk::writes(partial.buf)}, push, grid_1d(dev, table[2 * i + 1], wg),
                 "grad_norm_partial");
  }
  shader::GradNormPush push{0, 0, chunk_size, static_cast<std::uint32_t>(grads.size()), max_norm, 0, 0, 0};
  seq.dispatch(dev.pipeline({shaders::optim_grad_norm_reduce, {}, 3, sizeof(push)}),
               {vk::reads(partial.buf), vk::reads(tab.buf), vk::writes(stats.buf)}, push, {1, 1, 1}, "grad_norm_reduce");
}

void optimizer_step(vk::Sequence& seq, const OptimizerConfig& cfg, const DeviceTensor& step_consts,
                    const DeviceTensor& param, const DeviceTensor& grad, const DeviceOptimizerState& st,
                    const DeviceTensor& stats) {
  if (grad.shape != param.shape || param.dtype != DType::F32 || grad.dtype != DType::F32)
    throw ShapeError(std::string("ops::optimizer_step (") + optimizer_name(cfg.kind) + "): " + describe("grad", grad) +
                     " vs " + describe("param", param) + " — expected equal shapes, f32");
  if (step_consts.dtype != DType::F32 || step_consts.numel() != STEP_CONST_WORDS)
    throw ShapeError(std::string("ops::optimizer_step (") + optimizer_name(cfg.kind) + "): " +
                     describe("step constants", step_consts) + " — expected f32 [" +
                     std::to_string(STEP_CONST_WORDS) + "] (step_constants_tensor)");
  vk::Device& dev = seq.device();
  const std::uint32_t wg = dev.profile().u32("optim.wg");
  const auto n = static_cast<std::uint32_t>(param.numel());
  shader::OptimPush push{n, 0, 0, 0, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, cfg.clip_threshold, 0, 0, 0};
  const auto grid = grid_1d(dev, n, wg);
  const auto stats_in = vk::reads(stats.buf), consts_in = vk::reads(step_consts.buf);
  switch (cfg.kind) {
    case OptimizerKind::AdamW:
      seq.dispatch(dev.pipeline({shaders::optim_adamw, {wg}, 6, sizeof(push)}),
                   {stats_in, consts_in, vk::writes(param.buf), vk::reads(grad.buf), vk::writes(st.m.buf),
                    vk::writes(st.v.buf)},
                   push, grid, "adamw");
      break;
    case OptimizerKind::Lion:
      seq.dispatch(dev.pipeline({shaders::optim_lion, {wg}, 5, sizeof(push)}),
                   {stats_in, consts_in, vk::writes(param.buf), vk::reads(grad.buf), vk::writes(st.m.buf)}, push,
                   grid, "lion");
      break;
    case OptimizerKind::SGD:
      push.beta2 = cfg.dampening;
      push.flags = cfg.nesterov ? 1u : 0u;
      seq.dispatch(dev.pipeline({shaders::optim_sgd, {wg}, 5, sizeof(push)}),
                   {stats_in, consts_in, vk::writes(param.buf), vk::reads(grad.buf), vk::writes(st.m.buf)}, push,
                   grid, "sgd");
      break;
    case OptimizerKind::Adafactor: {
      if (param.rank() != 2)
        throw ShapeError("ops::optimizer_step (adafactor): " + describe("param", param) + " must be 2-D");
      push.rows = static_cast<std::uint32_t>(param.dim(0));
      push.cols = static_cast<std::uint32_t>(param.dim(1));
      const std::string op = "ops::optimizer_step (adafactor)", dims = " of param " + shape_str(param.shape);
      check_loop_checks(dev, op, "row statistics: the loop over the columns" + dims, loop_checks(push.cols));
      check_loop_checks(dev, op, "column statistics: the loop over the rows" + dims, loop_checks(push.rows));
      // An RMS pass: mean(R) over all rows (rows + 1 checks), then per row of its range one check of the row
      // loop and cols + 1 of the column loop, plus the row loop's exit.
      const auto rms_rows = spans(push.rows, loop_span(dev, op, "RMS: the loops over the rows and columns" + dims,
                                                       loop_checks(push.cols) + 1, loop_checks(push.rows) + 1));
      seq.dispatch(dev.pipeline({shaders::optim_adafactor_rows, {wg}, 4, sizeof(push)}),
                   {stats_in, consts_in, vk::reads(grad.buf), vk::writes(st.row.buf)}, push,
                   grid_1d(dev, push.rows, wg), "adafactor_rows");
      seq.dispatch(dev.pipeline({shaders::optim_adafactor_cols, {wg}, 4, sizeof(push)}),
                   {stats_in, consts_in, vk::reads(grad.buf), vk::writes(st.col.buf)}, push,
                   grid_1d(dev, push.cols, wg), "adafactor_cols");
      const auto& rms = dev.pipeline({shaders::optim_adafactor_rms, {}, 6, sizeof(push)});
      for (std::size_t i = 0; i < rms_rows.size(); ++i) {
        shader::OptimPush part = push;
        part.flags = (i == 0 ? ADAFACTOR_RMS_FIRST : 0u) | (i + 1 == rms_rows.size() ? ADAFACTOR_RMS_LAST : 0u);
        part.row_begin = static_cast<std::uint32_t>(rms_rows[i].first);
        part.row_end = static_cast<std::uint32_t>(rms_rows[i].second);
        seq.dispatch(rms,
                     {stats_in, consts_in, vk::reads(grad.buf), vk::reads(st.row.buf), vk::reads(st.col.buf),
                      vk::writes(st.scratch.buf)},
                     part, {1, 1, 1}, "adafactor_rms");
      }
      seq.dispatch(dev.pipeline({shaders::optim_adafactor_apply, {wg}, 7, sizeof(push)}),
                   {stats_in, consts_in, vk::reads(grad.buf), vk::reads(st.row.buf), vk::reads(st.col.buf),
                    vk::reads(st.scratch.buf), vk::writes(param.buf)},
                   push, grid, "adafactor_apply");
      break;
    }
  }
}

GradStats read_grad_stats(vk::Device& dev, const DeviceTensor& stats) {
  return grad_stats_from_tensor(download(dev, stats));
}

}  // namespace pocketlora::ops
