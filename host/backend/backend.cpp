#include "host/backend/backend.h"

#include <tuple>

#include "host/core/error.h"

namespace pocketlora {

const char* backend_kind_name(BackendKind k) { return k == BackendKind::Cpu ? "cpu" : "vulkan"; }

BackendKind parse_backend_kind(const std::string& s) {
  if (s == "cpu") return BackendKind::Cpu;
  if (s == "vulkan") return BackendKind::Vulkan;
  throw InvalidArgument("unknown backend '" + s + "' (expected auto, cpu or vulkan)");
}

Shape view_rows_shape(const std::string& name, const Shape& shape, std::int64_t row0, std::int64_t rows) {
  if (shape.empty() || row0 < 0 || rows < 0 || row0 > shape[0] - rows)
    throw ShapeError("view_rows: rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) + ") of '" +
                     name + "' " + shape_str(shape) + " leave its leading dimension");
  Shape s = shape;
  s[0] = rows;
  return s;
}

void check_write_rows(const char* backend, const std::string& name, const Shape& shape, std::int64_t row0,
                      const Tensor& src) {
  const std::int64_t rows = src.rank() ? src.dim(0) : -1;
  if (shape.empty() || rows < 0 || row0 < 0 || row0 > shape[0] - rows ||
      Shape(src.shape().begin() + 1, src.shape().end()) != Shape(shape.begin() + 1, shape.end()))
    throw ShapeError(std::string(backend) + ": write_rows of " + shape_str(src.shape()) + " at row " +
                     std::to_string(row0) + " into '" + name + "' " + shape_str(shape));
}

BTensor Backend::upload(const Tensor& t, Lifetime life, const std::string& name) {
  BTensor b = alloc(t.shape(), t.dtype(), life, name);
  write(b, t);
  return b;
}

std::vector<std::pair<std::string, BTensor>> BOptimizerState::tensors() const {
  std::vector<std::pair<std::string, BTensor>> out;
  using Named = std::pair<const char*, const BTensor*>;
  for (const auto& [what, t] : {Named{"m", &m}, Named{"v", &v}, Named{"row", &row}, Named{"col", &col}})
    if (*t) out.emplace_back(what, *t);
  return out;
}

// The shapes come from the one host definition (make_optimizer_state), so both backends hold what the reference
// optimizer holds; zeros are written explicitly (device memory is not zeroed on allocation).
BOptimizerState Backend::alloc_optimizer_state(const OptimizerConfig& cfg, const Shape& param_shape,
                                               const std::string& name) {
  const OptimizerState host = make_optimizer_state(cfg, param_shape);
  auto make = [&](const Tensor& t, const char* what) {
    return t.defined() && t.numel() > 0 ? upload(t, Lifetime::Weights, name + "." + what) : BTensor{};
  };
  return {make(host.m, "m"), make(host.v, "v"), make(host.row, "row"), make(host.col, "col")};
}

void check_lora_key(const std::string& op, const BTensor& key, const LoraOptions& opt) {
  if (!key) {
    if (opt.dropout > 0.0f)
      throw InvalidArgument(op + ": LoRA dropout " + std::to_string(opt.dropout) + " needs a dropout key tensor");
    return;
  }
  if (key.dtype != DType::I32 || key.shape != Shape{kLoraKeyWords})
    throw ShapeError(op + ": LoRA dropout key is " + shape_str(key.shape) + " " + dtype_name(key.dtype) +
                     ", expected i32 [" + std::to_string(kLoraKeyWords) + "]");
}

void check_optimizer_state(const std::string& op, const OptimizerConfig& cfg, const Shape& param_shape,
                           const BOptimizerState& s) {
  const OptimizerState want = make_optimizer_state(cfg, param_shape);
  using Member = std::tuple<const char*, const BTensor*, const Tensor*>;
  for (const auto& [what, have, need] : {Member{"m", &s.m, &want.m}, Member{"v", &s.v, &want.v},
                                         Member{"row", &s.row, &want.row}, Member{"col", &s.col, &want.col}}) {
    const bool needed = need->defined() && need->numel() > 0;
    if (static_cast<bool>(*have) != needed || (needed && (have->shape != need->shape() || have->dtype != DType::F32)))
      throw ShapeError(op + ": optimizer state '" + what + "' is " +
                       (*have ? shape_str(have->shape) + " " + dtype_name(have->dtype) : std::string("absent")) +
                       ", expected " + (needed ? "f32 " + shape_str(need->shape()) : std::string("absent")) +
                       " for param " + shape_str(param_shape) + " (" + optimizer_name(cfg.kind) + ")");
  }
}

BTensor Backend::alloc_grad_stats() {
  return upload(grad_stats_tensor(GradStats{}), Lifetime::Weights, "grad stats");
}

BTensor Backend::alloc_step_constants() {
  return upload(step_constants_tensor(StepConstants{}), Lifetime::Weights, "optimizer step constants");
}

GradStats Backend::read_grad_stats(const BTensor& stats) { return grad_stats_from_tensor(read(stats)); }

void Backend::matmul_lora(const BTensor& x, const BTensor& w, const BTensor& a, const BTensor& b, const BTensor& y,
                          const BTensor& t, float scale, const MatmulOptions& opt) {
  matmul(x, w, y, opt);
  LoraOptions lo;
  lo.scale = scale;
  lora_forward(x, a, b, y, t, BTensor{}, lo);
}

}  // namespace pocketlora
