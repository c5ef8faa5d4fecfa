#include "host/eval/peft_lora_adapter.h"

#include <algorithm>

#include "host/core/error.h"

namespace pocketlora {

LoraAdapter lora_adapter_from_peft(const PeftAdapter& peft, const LlamaModel& model) {
  // LoraAdapter holds one rank and alpha for every module of every layer: PEFT's per-module exceptions and
  // layer subsets are read (host/adapters/peft_export.h) but not applied here yet, so they are refused rather
  // than evaluated at the wrong scale.
  if (!peft.config.module_r.empty() || !peft.config.module_alpha.empty())
    throw FormatError("PEFT adapter: rank_pattern / alpha_pattern (per-module rank or alpha) is not supported "
                           "by generate/eval yet; merge it into the base with `pocketlora export --format merged`");
  if (!peft.config.layers.empty())
    throw FormatError("PEFT adapter: layers_to_transform (an adapter on some layers only) is not supported by "
                           "generate/eval yet; merge it into the base with `pocketlora export --format merged`");
  LoraAdapter a;
  a.config.rank = peft.config.r;
  a.config.alpha = static_cast<float>(peft.config.lora_alpha);
  a.config.rslora = peft.config.use_rslora;
  a.config.dropout = 0.0f;  // only evaluated: dropout is off in the eval program anyway
  std::string targets;
  for (const auto& t : peft.config.targets) targets += (targets.empty() ? "" : ",") + t;
  a.config.targets = parse_lora_targets(targets);
  a.config.validate();
  a.qk_layout = model.rope_layout;
  auto tensor = [&](const std::string& name) -> const Tensor& {
    auto it = std::find_if(peft.tensors.begin(), peft.tensors.end(), [&](const auto& p) { return p.first == name; });
    if (it == peft.tensors.end()) throw FormatError("PEFT adapter: tensor '" + name + "' is missing");
    return it->second;
  };
  for (std::int64_t l = 0; l < model.config.n_layers; ++l)
    for (LoraTarget t : a.config.targets) {
      LoraModule m;
      m.layer = l;
      m.target = t;
      m.a = tensor(m.tensor_name('A')).to(DType::F32);
      m.b = tensor(m.tensor_name('B')).to(DType::F32);
      a.modules.push_back(std::move(m));
    }
  return a;
}

LoraAdapter load_peft_lora_adapter(const std::filesystem::path& dir, const LlamaModel& model) {
  return lora_adapter_from_peft(read_peft_adapter(dir, model.config, model.rope_layout), model);
}

}  // namespace pocketlora
