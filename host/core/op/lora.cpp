#include "host/core/op/lora.h"

#include <cmath>
#include <cstring>

#include "host/core/error.h"
#include "shaders/common/lora_push.h"
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

const std::int64_t kLoraKeyWords = LORA_KEY_WORDS;

Tensor lora_key_tensor(const LoraDropoutKey& key) {
  Tensor t = Tensor::zeros({kLoraKeyWords}, DType::I32);
  const std::uint32_t words[LORA_KEY_WORDS] = {static_cast<std::uint32_t>(key.seed),
                                               static_cast<std::uint32_t>(key.seed >> 32), key.step, key.micro};
  std::memcpy(t.raw(), words, sizeof(words));
  return t;
}

LoraDropoutKey lora_key_from_tensor(const char* op, const Tensor& t) {
  if (t.dtype() != DType::I32 || t.shape() != Shape{kLoraKeyWords})
    throw ShapeError(std::string(op) + ": LoRA dropout key is " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) +
                     ", expected i32 [" + std::to_string(kLoraKeyWords) + "]");
  std::uint32_t w[LORA_KEY_WORDS];
  std::memcpy(w, t.raw(), sizeof(w));
  return {w[0] | (static_cast<std::uint64_t>(w[1]) << 32), w[2], w[3]};
}

Tensor lora_dropout_ref(const Tensor& x, const LoraDropoutKey& key, const LoraOptions& opt) {
  if (opt.dropout < 0.0f || opt.dropout >= 1.0f)
    throw InvalidArgument("LoRA dropout must be in [0, 1), got " + std::to_string(opt.dropout));
  Tensor out = x.clone();
  if (opt.dropout == 0.0f) return out;
  const float keep_scale = 1.0f / (1.0f - opt.dropout);
  const std::array<std::uint32_t, 4> k = {static_cast<std::uint32_t>(key.seed),
                                          static_cast<std::uint32_t>(key.seed >> 32), key.step, key.micro};
  Tensor f = out.to(DType::F64);
  for (std::int64_t i = 0; i < f.numel(); ++i) {
    double& v = f.data<double>()[i];
    if (out.dtype() == DType::F32) v = static_cast<float>(v) * keep_scale;  // the GPU's f32 product
    else v *= static_cast<double>(keep_scale);
    if (!dropout_keep(k, opt.stream, static_cast<std::uint32_t>(i), opt.dropout)) v = 0.0;
  }
  out.copy_from(f);
  return out;
}

}  // namespace pocketlora
