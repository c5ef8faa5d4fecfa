#pragma once
// The manifest.json of one adapter in the store (host/adapters/adapter_store.h), schema version 1:
//   {"format": "pocketlora-adapter", "format_version": 1, "name", "enabled", "created",
//    "base": {"fingerprint", "quant", "model", "from_training_run"},
//    "lora": {"r", "alpha", "dropout", "rslora", "targets"},
//    "training": {"steps", "final_loss", "final_val_loss"} (null when unknown),
//    "files": [{"name", "size", "sha256"}, ...], "size_bytes"}
// A reader refuses another format or a newer version by name, so an older app never misreads a newer store.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pocketlora {

inline constexpr std::int64_t kAdapterManifestVersion = 1;

struct AdapterFileRecord {
  std::string name;  // adapter_model.safetensors or adapter_config.json
  std::uint64_t size = 0;
  std::string sha256;
};

struct AdapterManifest {
  std::string name;
  bool enabled = true;
  std::string created;  // UTC, ISO 8601 ("2026-12-02T08:14:02Z")
  std::string base_fingerprint, base_quant, base_model;
  bool base_from_training_run = false;  // the fingerprint is the training checkpoint's, not the --model's
  std::int64_t rank = 0;
  double alpha = 0, dropout = 0;
  bool rslora = false;
  std::vector<std::string> targets;  // q, k, v, o, gate, up, down
  std::optional<std::int64_t> steps;
  std::optional<double> final_loss, final_val_loss;
  std::vector<AdapterFileRecord> files;
  std::uint64_t size_bytes = 0;  // the adapter's files, manifest excluded
};

nlohmann::json adapter_manifest_json(const AdapterManifest& m);
// FormatError "ORIGIN: field 'NAME': ..." for a missing or mistyped field, another format or version.
AdapterManifest parse_adapter_manifest(const nlohmann::json& j, const std::string& origin);

}  // namespace pocketlora
