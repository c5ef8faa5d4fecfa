#include "host/train/adapter_base.h"

#include "host/train/base_fingerprint.h"

namespace pocketlora {

AdapterBase adapter_base(const LlamaModel& model, const std::filesystem::path& model_path,
                         const std::string& base_quant) {
  AdapterBase b;
  b.config = model.config;
  b.qk_layout = model.rope_layout;
  // The trainer's spelling (train_config_json / Trainer): the fingerprint hashes it.
  b.base_quant = parse_base_quant(base_quant) == BaseQuant::Nf4 ? "nf4" : "none";
  b.fingerprint = base_model_fingerprint(model_path, b.base_quant);
  b.model_name = model_path.filename().string();
  return b;
}

}  // namespace pocketlora
