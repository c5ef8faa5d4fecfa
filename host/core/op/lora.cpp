#include "host/core/op/lora.h"

#include <cmath>

#include "host/core/error.h"
#include "shaders/common/philox.h"

namespace pocketlora {

float lora_scale(float alpha, std::int64_t rank, bool rslora) {
  if (rank <= 0) throw InvalidArgument("lora_scale: rank must be positive, got " + std::to_string(rank));
  return rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

std::array<std::int64_t, 4> check_lora_shapes(const char* op, const Shape& x, const Shape& a, const Shape& b,
                                              const Shape* y) {
  const bool ok = x.size() == 2 && a.size() == 2 && b.size() == 2 && a[0] > 0 && a[1] == x[1] && b[1] == a[0] &&
                  (!y || (y->size() == 2 && (*y)[0] == x[0] && (*y)[1] == b[0]));
  if (!ok)
    throw ShapeError(std::string(op) + ": X " + shape_str(x) + ", A " + shape_str(a) + ", B " + shape_str(b) +
                     (y ? ", Y " + shape_str(*y) : std::string()) +
                     " — expected X [M,K], A [r,K] with r >= 1, B [N,r], Y [M,N]");
  return {x[0], x[1], b[0], a[0]};
}

Tensor lora_dropout_ref(const Tensor& x, const LoraOptions& opt) {
  if (opt.dropout < 0.0f || opt.dropout >= 1.0f)
    throw InvalidArgument("LoRA dropout must be in [0, 1), got " + std::to_string(opt.dropout));
  Tensor out = x.clone();
  if (opt.dropout == 0.0f) return out;
  const float keep_scale = 1.0f / (1.0f - opt.dropout);
  const auto lo = static_cast<std::uint32_t>(opt.seed), hi = static_cast<std::uint32_t>(opt.seed >> 32);
  Tensor f = out.to(DType::F64);
  for (std::int64_t i = 0; i < f.numel(); ++i) {
    double& v = f.data<double>()[i];
    if (out.dtype() == DType::F32) v = static_cast<float>(v) * keep_scale;  // the GPU's f32 product
    else v *= static_cast<double>(keep_scale);
    if (!dropout_keep(lo, hi, opt.stream, static_cast<std::uint32_t>(i), opt.dropout)) v = 0.0;
  }
  out.copy_from(f);
  return out;
}

}  // namespace pocketlora
