#include "host/eval/peft_lora_adapter.h"

#include <algorithm>

#include "host/core/error.h"

namespace pocketlora {

LoraAdapter lora_adapter_from_peft(const PeftAdapter& peft, const LlamaModel& model) {
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
  // PEFT's per-module rank / alpha go with each module; layers outside layers_to_transform have no module, so
  // their linears stay the base's.
  for (std::int64_t l = 0; l < model.config.n_layers; ++l) {
    if (!peft.config.adapts_layer(l)) continue;
    for (LoraTarget t : a.config.targets) {
      LoraModule m;
      m.layer = l;
      m.target = t;
      m.a = tensor(m.tensor_name('A')).to(DType::F32);
      m.b = tensor(m.tensor_name('B')).to(DType::F32);
      if (auto it = peft.config.module_r.find(m.name()); it != peft.config.module_r.end()) m.rank = it->second;
      if (auto it = peft.config.module_alpha.find(m.name()); it != peft.config.module_alpha.end())
        m.alpha = static_cast<float>(it->second);
      a.modules.push_back(std::move(m));
    }
  }
  return a;
}

LoraAdapter load_peft_lora_adapter(const std::filesystem::path& dir, const LlamaModel& model) {
  return lora_adapter_from_peft(read_peft_adapter(dir, model.config, model.rope_layout), model);
}

}  // namespace pocketlora
