#include "host/eval/resident_adapters.h"

#include "host/core/error.h"
#include "host/eval/peft_lora_adapter.h"
#include "host/train/adapter_base.h"

namespace pocketlora {

std::size_t ResidentAdapters::index(Decoder& decoder, const LlamaModel& model, const std::filesystem::path& model_path,
                                    const AdapterStore& store, const std::string& name) {
  const AdapterManifest man = store.show(name);  // absent: InvalidArgument naming it; files verified
  if (!man.enabled)
    throw InvalidArgument("adapter '" + name + "' in " + store.root().string() + " is disabled (enable it first)");
  std::string key = (store.root() / name).string();
  for (const auto& f : man.files) key += ":" + f.sha256;
  if (auto it = by_content_.find(key); it != by_content_.end()) return it->second;
  const PeftAdapter peft = store.load(name, adapter_base(model, model_path, man.base_quant));
  const std::size_t i = decoder.add_adapter(lora_adapter_from_peft(peft, model), name);
  by_content_.emplace(key, i);
  return i;
}

}  // namespace pocketlora
