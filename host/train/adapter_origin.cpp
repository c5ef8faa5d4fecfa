#include "host/train/adapter_origin.h"

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "host/core/error.h"
#include "host/train/checkpoint.h"
#include "host/train/metrics_log.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"

namespace pocketlora {

namespace fs = std::filesystem;

AdapterOrigin read_adapter_origin(const fs::path& run_dir) {
  AdapterOrigin o;
  if (!list_checkpoints(run_dir).empty()) {
    // Only the metadata: the adapter itself is checked by the store against the base config.
    const fs::path meta_path = resolve_resume(run_dir) / "checkpoint.json";
    const std::string origin = "checkpoint '" + meta_path.string() + "'";
    nlohmann::json meta;
    try {
      meta = nlohmann::json::parse(read_file_text(meta_path));
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(origin + ": not valid JSON (" + e.what() + ")");
    }
    o.base_fingerprint = json_field::string(meta, "base_model_fingerprint", origin);
    o.steps = json_field::integer(meta, "step", origin);
    if (auto config = meta.find("config"); config != meta.end() && config->is_object())
      if (auto quant = json_field::opt_string(*config, "quant", origin + ": config")) o.base_quant = *quant;
  }
  const fs::path metrics = run_dir / "metrics.jsonl";
  if (fs::exists(metrics)) {
    const std::optional<std::int64_t> saved_step = o.steps;
    for (const StepMetrics& m : read_metrics_log(metrics)) {
      if (saved_step && m.step > *saved_step) break;
      if (!m.skipped && std::isfinite(m.loss)) o.final_loss = m.loss;
      if (m.val_loss && std::isfinite(*m.val_loss)) o.final_val_loss = *m.val_loss;
      if (!saved_step) o.steps = m.step;
    }
  }
  return o;
}

}  // namespace pocketlora
