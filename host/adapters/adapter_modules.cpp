#include "host/adapters/adapter_modules.h"

#include "host/model/llama_weights.h"

namespace pocketlora {

const AdapterModule* adapter_module_named(const std::string& name) {
  for (const auto& m : kAdapterModules)
    if (name == m.name) return &m;
  return nullptr;
}

std::string adapter_module_name(std::int64_t layer, const std::string& module) {
  return "layers." + std::to_string(layer) + "." + module;
}

std::string adapter_tensor_name(std::int64_t layer, const std::string& module, char ab) {
  return adapter_module_name(layer, module) + "." + ab;
}

std::pair<std::int64_t, std::int64_t> adapter_linear_shape(const LlamaConfig& c, const std::string& m) {
  const std::int64_t q_dim = c.n_heads * c.head_dim;
  if (m == "q") return {q_dim, c.dim};
  if (m == "k" || m == "v") return {c.kv_dim(), c.dim};
  if (m == "o") return {c.dim, q_dim};
  if (m == "gate" || m == "up") return {c.hidden_dim, c.dim};
  return {c.dim, c.hidden_dim};  // down
}

Tensor linear_rows_to_layout(const Tensor& b, const LlamaConfig& c, const std::string& module, RopeLayout from,
                      RopeLayout to) {
  const std::int64_t heads = module == "q" ? c.n_heads : module == "k" ? c.n_kv_heads : 0;
  if (heads == 0 || from == to) return b.to(DType::F32);
  return to == RopeLayout::RotateHalf ? permute_rows_interleaved_to_hf(b, heads, c.head_dim)
                                      : permute_rows_hf_to_interleaved(b, heads, c.head_dim);
}

}  // namespace pocketlora
