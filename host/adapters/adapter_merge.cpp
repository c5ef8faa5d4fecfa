#include "host/adapters/adapter_merge.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "host/adapters/adapter_modules.h"
#include "host/core/error.h"

namespace pocketlora {

void merge_lora_into(LlamaWeights& weights, const PeftAdapter& adapter) {
  check_peft_adapter(adapter, weights.config, "merging LoRA adapter");
  const PeftAdapterConfig& c = adapter.config;
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [n, t] : adapter.tensors) by_name[n] = &t;
  for (std::int64_t l = 0; l < weights.config.n_layers; ++l) {
    if (!c.adapts_layer(l)) continue;
    for (const auto& target : c.targets) {
      const std::string module = adapter_module_name(l, target);
      const Tensor a = by_name.at(adapter_tensor_name(l, target, 'A'))->to(DType::F32);
      const Tensor b = by_name.at(adapter_tensor_name(l, target, 'B'))->to(DType::F32);
      const std::string wname = "layers." + std::to_string(l) + "." + adapter_module_named(target)->weights;
      auto it = weights.tensors.find(wname);
      if (it == weights.tensors.end()) throw InternalError("merge: base has no tensor '" + wname + "'");
      Tensor w = it->second.to(DType::F32);  // a copy: the loaded tensor may share storage with another name
      const std::int64_t out = w.shape()[0], in = w.shape()[1], r = a.shape()[0];
      const double s = c.scale_of(module);
      const float* pa = a.data<float>();
      const float* pb = b.data<float>();
      float* pw = w.data<float>();
      std::vector<double> row(static_cast<std::size_t>(in));
      for (std::int64_t o = 0; o < out; ++o) {
        std::fill(row.begin(), row.end(), 0.0);
        for (std::int64_t k = 0; k < r; ++k) {
          const double bk = static_cast<double>(pb[o * r + k]);
          const float* ak = pa + k * in;
          for (std::int64_t i = 0; i < in; ++i) row[static_cast<std::size_t>(i)] += bk * static_cast<double>(ak[i]);
        }
        for (std::int64_t i = 0; i < in; ++i) {
          const double v = static_cast<double>(pw[o * in + i]) + s * row[static_cast<std::size_t>(i)];
          if (!std::isfinite(static_cast<float>(v)))
            throw NumericError("merging LoRA adapter: '" + wname + "' [" + std::to_string(o) + ", " +
                               std::to_string(i) + "] is not finite after the merge (" + std::to_string(v) + ")");
          pw[o * in + i] = static_cast<float>(v);
        }
      }
      it->second = std::move(w);
    }
  }
}

}  // namespace pocketlora
