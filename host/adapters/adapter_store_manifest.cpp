#include "host/adapters/adapter_store_manifest.h"

#include "host/core/error.h"
#include "host/util/json_field.h"

namespace pocketlora {

namespace {

constexpr const char* kFormat = "pocketlora-adapter";

nlohmann::json optional_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

const nlohmann::json& object_field(const nlohmann::json& j, const char* key, const std::string& origin) {
  auto it = j.find(key);
  if (it == j.end()) throw FormatError(origin + ": missing field '" + key + "'");
  if (!it->is_object())
    throw FormatError(origin + ": field '" + key + "': expected object, found " + std::string(it->type_name()));
  return *it;
}

bool bool_field(const nlohmann::json& j, const char* key, const std::string& origin) {
  auto v = json_field::opt_bool(j, key, origin);
  if (!v) throw FormatError(origin + ": missing field '" + key + "'");
  return *v;
}

std::vector<std::string> string_array(const nlohmann::json& j, const char* key, const std::string& origin) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) throw FormatError(origin + ": field '" + key + "': expected array of strings");
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string())
      throw FormatError(origin + ": field '" + key + "': expected array of strings, found an element of type " +
                        std::string(e.type_name()));
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::uint64_t size_field(const nlohmann::json& j, const char* key, const std::string& origin) {
  const std::int64_t v = json_field::integer(j, key, origin);
  if (v < 0)
    throw FormatError(origin + ": field '" + key + "': expected a byte count >= 0, found " + std::to_string(v));
  return static_cast<std::uint64_t>(v);
}

}  // namespace

nlohmann::json adapter_manifest_json(const AdapterManifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files) files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}});
  return {
      {"format", kFormat},
      {"format_version", kAdapterManifestVersion},
      {"name", m.name},
      {"enabled", m.enabled},
      {"created", m.created},
      {"base",
       {{"fingerprint", m.base_fingerprint},
        {"quant", m.base_quant},
        {"model", m.base_model},
        {"from_training_run", m.base_from_training_run}}},
      {"lora",
       {{"r", m.rank}, {"alpha", m.alpha}, {"dropout", m.dropout}, {"rslora", m.rslora}, {"targets", m.targets}}},
      {"training",
       {{"steps", m.steps ? nlohmann::json(*m.steps) : nlohmann::json()},
        {"final_loss", optional_json(m.final_loss)},
        {"final_val_loss", optional_json(m.final_val_loss)}}},
      {"files", files},
      {"size_bytes", m.size_bytes},
  };
}

AdapterManifest parse_adapter_manifest(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(origin + ": expected a JSON object, found " + std::string(j.type_name()));
  const std::string format = json_field::string(j, "format", origin);
  if (format != kFormat)
    throw FormatError(origin + ": field 'format': expected \"" + kFormat + "\", found \"" + format + "\"");
  const std::int64_t version = json_field::integer(j, "format_version", origin);
  if (version != kAdapterManifestVersion)
    throw FormatError(origin + ": field 'format_version': expected " + std::to_string(kAdapterManifestVersion) +
                      ", found " + std::to_string(version) + " (written by another version of pocketlora)");
  AdapterManifest m;
  m.name = json_field::string(j, "name", origin);
  m.enabled = bool_field(j, "enabled", origin);
  m.created = json_field::string(j, "created", origin);

  const auto& base = object_field(j, "base", origin);
  const std::string base_origin = origin + ": base";
  m.base_fingerprint = json_field::string(base, "fingerprint", base_origin);
  m.base_quant = json_field::string(base, "quant", base_origin);
  m.base_model = json_field::string(base, "model", base_origin);
  m.base_from_training_run = bool_field(base, "from_training_run", base_origin);

  const auto& lora = object_field(j, "lora", origin);
  const std::string lora_origin = origin + ": lora";
  m.rank = json_field::integer(lora, "r", lora_origin);
  if (m.rank <= 0) throw FormatError(lora_origin + ": field 'r': expected > 0, found " + std::to_string(m.rank));
  m.alpha = json_field::number(lora, "alpha", lora_origin);
  m.dropout = json_field::number(lora, "dropout", lora_origin);
  m.rslora = bool_field(lora, "rslora", lora_origin);
  m.targets = string_array(lora, "targets", lora_origin);

  const auto& training = object_field(j, "training", origin);
  const std::string training_origin = origin + ": training";
  m.steps = json_field::opt_int(training, "steps", training_origin);
  m.final_loss = json_field::opt_number(training, "final_loss", training_origin);
  m.final_val_loss = json_field::opt_number(training, "final_val_loss", training_origin);

  auto files = j.find("files");
  if (files == j.end() || !files->is_array()) throw FormatError(origin + ": field 'files': expected array");
  for (std::size_t i = 0; i < files->size(); ++i) {
    const std::string file_origin = origin + ": files[" + std::to_string(i) + "]";
    AdapterFileRecord f;
    f.name = json_field::string((*files)[i], "name", file_origin);
    f.size = size_field((*files)[i], "size", file_origin);
    f.sha256 = json_field::string((*files)[i], "sha256", file_origin);
    m.files.push_back(std::move(f));
  }
  m.size_bytes = size_field(j, "size_bytes", origin);
  return m;
}

}  // namespace pocketlora
