#include "host/train/lora_adapter.h"

#include <cmath>

#include "host/core/error.h"
#include "host/core/op/lora.h"
#include "host/util/splitmix64.h"

namespace pocketlora {

std::string LoraModule::name() const { return "layers." + std::to_string(layer) + "." + lora_target_name(target); }

std::pair<std::int64_t, std::int64_t> lora_target_shape(const LlamaConfig& c, LoraTarget t) {
  const std::int64_t q_dim = c.n_heads * c.head_dim;
  switch (t) {
    case LoraTarget::Q: return {q_dim, c.dim};
    case LoraTarget::K:
    case LoraTarget::V: return {c.kv_dim(), c.dim};
    case LoraTarget::O: return {c.dim, q_dim};
    case LoraTarget::Gate:
    case LoraTarget::Up: return {c.hidden_dim, c.dim};
    case LoraTarget::Down: return {c.dim, c.hidden_dim};
  }
  throw InternalError("lora_target_shape: unknown target");
}

float LoraAdapter::scale_of(const LoraModule& m) const {
  return lora_scale(m.alpha.value_or(config.alpha), rank_of(m), config.rslora);
}

const LoraModule* LoraAdapter::find(std::int64_t layer, LoraTarget t) const {
  for (const auto& m : modules)
    if (m.layer == layer && m.target == t) return &m;
  return nullptr;
}

LoraModule* LoraAdapter::find(std::int64_t layer, LoraTarget t) {
  return const_cast<LoraModule*>(static_cast<const LoraAdapter*>(this)->find(layer, t));
}

LoraAdapter init_lora_adapter(const LlamaConfig& model_config, RopeLayout qk_layout, const LoraConfig& config,
                              std::uint64_t seed) {
  config.validate();
  LoraAdapter ad;
  ad.config = config;
  ad.qk_layout = qk_layout;
  for (std::int64_t l = 0; l < model_config.n_layers; ++l)
    for (LoraTarget t : config.targets) {
      const auto [out, in] = lora_target_shape(model_config, t);
      LoraModule m{l, t, Tensor::zeros({config.rank, in}), Tensor::zeros({out, config.rank}), {}, {}};
      // kaiming_uniform_(a=sqrt(5)) on [r, in]: gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / in) = 1 / sqrt(in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      std::uint64_t state = seed ^ (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(l * kLoraTargetCount +
                                                                                      static_cast<int>(t) + 1));
      float* a = m.a.data<float>();
      for (std::int64_t i = 0; i < m.a.numel(); ++i) {
        const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;  // [0, 1)
        a[i] = static_cast<float>((2.0 * u - 1.0) * bound);
      }
      ad.modules.push_back(std::move(m));
    }
  return ad;
}

}  // namespace pocketlora
