#include "host/infer/peft_adapter_load.h"

#include <map>
#include <string>

#include "host/core/error.h"

namespace pocketlora {

LoraAdapter lora_adapter_from_peft(const PeftAdapter& peft, const std::filesystem::path& dir) {
  LoraAdapter a;
  a.config.rank = peft.config.r;
  a.config.alpha = static_cast<float>(peft.config.lora_alpha);
  a.config.dropout = 0.0f;  // inference: dropout is off whatever the adapter was trained with
  a.config.rslora = peft.config.use_rslora;
  a.config.targets.clear();
  std::string targets;
  for (const auto& t : peft.config.targets) targets += (targets.empty() ? "" : ",") + t;
  if (!targets.empty()) a.config.targets = parse_lora_targets(targets);
  std::map<std::pair<std::int64_t, int>, LoraModule> modules;
  const auto where = [&](const std::string& name) { return dir.string() + ": tensor '" + name + "'"; };
  for (const auto& [name, t] : peft.tensors) {
    // layers.{i}.{target}.{A|B}
    const auto p1 = name.find('.'), p2 = name.find('.', p1 + 1), p3 = name.rfind('.');
    if (name.rfind("layers.", 0) != 0 || p2 == std::string::npos || p3 != name.size() - 2 || p3 <= p2)
      throw InvalidArgument(where(name) + " is not named layers.{i}.{target}.{A|B}");
    std::int64_t layer = 0;
    try {
      layer = std::stoll(name.substr(p1 + 1, p2 - p1 - 1));
    } catch (const std::logic_error&) {
      throw InvalidArgument(where(name) + ": layer index is not a number");
    }
    const LoraTarget target = parse_lora_targets(name.substr(p2 + 1, p3 - p2 - 1)).at(0);
    LoraModule& m = modules[{layer, static_cast<int>(target)}];
    m.layer = layer;
    m.target = target;
    const char which = name.back();
    if (which == 'A') m.a = t.to(DType::F32);
    else if (which == 'B') m.b = t.to(DType::F32);
    else throw InvalidArgument(where(name) + " ends in neither .A nor .B");
    if (t.rank() != 2 || (which == 'A' ? t.dim(0) : t.dim(1)) != a.config.rank)
      throw InvalidArgument(where(name) + " " + shape_str(t.shape()) + " does not have rank r = " +
                            std::to_string(a.config.rank) + " of adapter_config.json");
  }
  for (auto& [key, m] : modules) {
    if (m.a.rank() == 0 || m.b.rank() == 0)
      throw InvalidArgument(dir.string() + ": module " + m.name() + " has " + (m.a.rank() ? "A" : "B") +
                            " but not " + (m.a.rank() ? "B" : "A"));
    a.modules.push_back(std::move(m));
  }
  return a;
}

LoraAdapter load_peft_lora_adapter(const std::filesystem::path& dir, const LlamaConfig& model, RopeLayout qk_layout) {
  LoraAdapter a = lora_adapter_from_peft(read_peft_adapter(dir, model, qk_layout), dir);
  a.qk_layout = qk_layout;
  return a;
}

}  // namespace pocketlora
