#include "host/train/checkpoint.h"

#include <algorithm>
#include <system_error>

#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/util/atomic_file.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"
#include "host/util/sha256.h"

namespace pocketlora {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kCheckpointFormat = "pocketlora-checkpoint";
constexpr const char* kMetaFile = "checkpoint.json";
constexpr const char* kTensorFile = "state.safetensors";
constexpr const char* kLatestFile = "latest_checkpoint";
constexpr const char* kDirPrefix = "checkpoint-";
constexpr const char* kAdapterPrefix = "adapter/";
constexpr const char* kOptimizerPrefix = "optimizer/";

// "checkpoint-123" -> 123; -1 for any other name.
std::int64_t step_of_dir_name(const std::string& name) {
  const std::string prefix = kDirPrefix;
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0 || name.size() > prefix.size() + 18)
    return -1;
  std::int64_t step = 0;
  for (std::size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::vector<std::string> names_of(const json& meta, const char* key, const std::string& origin) {
  auto it = meta.find(key);
  if (it == meta.end() || !it->is_array()) throw FormatError(origin + ": field '" + key + "': expected an array of names");
  std::vector<std::string> names;
  for (const auto& n : *it) {
    if (!n.is_string()) throw FormatError(origin + ": field '" + key + "': expected names (strings), found " + n.dump());
    names.push_back(n.get<std::string>());
  }
  return names;
}

std::vector<std::pair<std::string, Tensor>> tensors_of(const SafetensorsFile& file, const std::vector<std::string>& names,
                                                       const std::string& prefix, const std::string& meta_origin) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& n : names) {
    if (!file.find(prefix + n))
      throw FormatError(file.path().string() + ": tensor '" + prefix + n + "' listed in " + meta_origin + " is missing");
    out.emplace_back(n, file.tensor(prefix + n).clone());
  }
  return out;
}

std::string describe(const json* v) { return v ? v->dump() : "(absent)"; }

}  // namespace

void write_checkpoint_dir(const fs::path& dir, const Checkpoint& ckpt) {
  if (ckpt.step < 0) throw InvalidArgument("checkpoint: step " + std::to_string(ckpt.step) + " is negative");
  std::vector<std::pair<std::string, Tensor>> all;
  json adapter_names = json::array(), optimizer_names = json::array();
  for (const auto& [name, t] : ckpt.adapter) {
    all.emplace_back(kAdapterPrefix + name, t);
    adapter_names.push_back(name);
  }
  for (const auto& [name, t] : ckpt.optimizer) {
    all.emplace_back(kOptimizerPrefix + name, t);
    optimizer_names.push_back(name);
  }
  AtomicDirWriter out(dir);
  const fs::path tensor_file = out.dir() / kTensorFile;
  write_safetensors(tensor_file, all);  // duplicate names are refused there
  json meta = {
      {"format", kCheckpointFormat},
      {"format_version", kCheckpointFormatVersion},
      {"step", ckpt.step},
      {"data_position", {{"epoch", ckpt.data.epoch}, {"index", ckpt.data.index}}},
      {"rng_state", ckpt.rng_state},
      {"base_model_fingerprint", ckpt.base_fingerprint},
      {"config", ckpt.config},
      {"adapter_tensors", adapter_names},
      {"optimizer_tensors", optimizer_names},
      {"tensors_file", kTensorFile},
      {"tensors_sha256", sha256_file(tensor_file)},
  };
  write_file_atomic(out.dir() / kMetaFile, meta.dump(2) + "\n");
  out.commit();
}

Checkpoint read_checkpoint_dir(const fs::path& dir) {
  const fs::path meta_path = dir / kMetaFile;
  const std::string origin = meta_path.string();
  if (!fs::is_regular_file(meta_path))
    throw IoError("'" + dir.string() + "' is not a checkpoint: no " + kMetaFile + " in it");
  json meta;
  try {
    meta = json::parse(read_file_text(meta_path));
  } catch (const json::parse_error& e) {
    throw FormatError(origin + ": not valid JSON (truncated or corrupt): " + e.what());
  }
  if (!meta.is_object()) throw FormatError(origin + ": expected a JSON object");
  const std::string format = json_field::string(meta, "format", origin);
  if (format != kCheckpointFormat)
    throw FormatError(origin + ": field 'format': expected \"" + kCheckpointFormat + "\", found \"" + format + "\"");
  const std::int64_t version = json_field::integer(meta, "format_version", origin);
  if (version != kCheckpointFormatVersion)
    throw FormatError(origin + ": field 'format_version': expected " + std::to_string(kCheckpointFormatVersion) +
                      ", found " + std::to_string(version) + " (written by another PocketLoRA version)");

  Checkpoint c;
  c.step = json_field::integer(meta, "step", origin);
  if (c.step < 0) throw FormatError(origin + ": field 'step': expected >= 0, found " + std::to_string(c.step));
  auto pos = meta.find("data_position");
  if (pos == meta.end() || !pos->is_object()) throw FormatError(origin + ": missing field 'data_position'");
  c.data.epoch = json_field::integer(*pos, "epoch", origin + " data_position");
  c.data.index = json_field::integer(*pos, "index", origin + " data_position");
  auto rng = meta.find("rng_state");
  if (rng == meta.end() || !rng->is_array()) throw FormatError(origin + ": field 'rng_state': expected an array");
  for (const auto& w : *rng) {
    if (!w.is_number_unsigned())
      throw FormatError(origin + ": field 'rng_state': expected unsigned 64-bit words, found " + w.dump());
    c.rng_state.push_back(w.get<std::uint64_t>());
  }
  c.base_fingerprint = json_field::string(meta, "base_model_fingerprint", origin);
  auto cfg = meta.find("config");
  if (cfg == meta.end() || !cfg->is_object()) throw FormatError(origin + ": field 'config': expected an object");
  c.config = *cfg;

  const std::string tensor_name = json_field::string(meta, "tensors_file", origin);
  if (tensor_name != kTensorFile)
    throw FormatError(origin + ": field 'tensors_file': expected \"" + std::string(kTensorFile) + "\", found \"" +
                      tensor_name + "\"");
  const fs::path tensor_path = dir / kTensorFile;
  if (!fs::is_regular_file(tensor_path)) throw IoError("checkpoint '" + dir.string() + "': " + kTensorFile + " is missing");
  const std::string want = json_field::string(meta, "tensors_sha256", origin);
  const std::string found = sha256_file(tensor_path);
  if (found != want)
    throw FormatError(tensor_path.string() + ": SHA-256 " + found + " does not match " + want + " recorded in " +
                      kMetaFile + " (the file is truncated or corrupt)");
  const SafetensorsFile file = SafetensorsFile::open(tensor_path);
  c.adapter = tensors_of(file, names_of(meta, "adapter_tensors", origin), kAdapterPrefix, kMetaFile);
  c.optimizer = tensors_of(file, names_of(meta, "optimizer_tensors", origin), kOptimizerPrefix, kMetaFile);
  return c;
}

void check_checkpoint_compatible(const Checkpoint& ckpt, const fs::path& dir, const CheckpointExpectation& expected) {
  const std::string origin = "checkpoint '" + dir.string() + "'";
  if (ckpt.base_fingerprint != expected.base_fingerprint)
    throw InvalidArgument(origin + " belongs to another base model or quantization: field 'base_model_fingerprint': "
                          "expected " + expected.base_fingerprint + " (this run), found " + ckpt.base_fingerprint);
  for (const auto& key : expected.must_match) {
    json::json_pointer ptr;
    try {
      ptr = json::json_pointer(key);
    } catch (const json::exception&) {
      throw InvalidArgument("checkpoint compatibility: '" + key + "' is not a JSON pointer (\"/section/field\")");
    }
    const json* want = expected.config.contains(ptr) ? &expected.config.at(ptr) : nullptr;
    const json* found = ckpt.config.contains(ptr) ? &ckpt.config.at(ptr) : nullptr;
    if ((want == nullptr) != (found == nullptr) || (want && *want != *found))
      throw InvalidArgument(origin + " does not fit this run: config field '" + key + "': expected " + describe(want) +
                            " (this run), found " + describe(found) + " (checkpoint)");
  }
}

Checkpoint load_checkpoint(const fs::path& dir, const CheckpointExpectation& expected) {
  Checkpoint c = read_checkpoint_dir(dir);
  check_checkpoint_compatible(c, dir, expected);
  return c;
}

std::vector<std::pair<std::int64_t, fs::path>> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<std::int64_t, fs::path>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::int64_t step = step_of_dir_name(e.path().filename().string());
    if (step >= 0 && e.is_directory() && fs::is_regular_file(e.path() / kMetaFile)) out.emplace_back(step, e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path save_checkpoint(const fs::path& run_dir, const Checkpoint& ckpt, int keep_last) {
  if (keep_last < 1) throw InvalidArgument("checkpoints to keep: expected >= 1, found " + std::to_string(keep_last));
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw IoError("cannot create run directory '" + run_dir.string() + "': " + ec.message());
  remove_stale_atomic_temps(run_dir);
  const std::string name = kDirPrefix + std::to_string(ckpt.step);
  const fs::path dir = run_dir / name;
  write_checkpoint_dir(dir, ckpt);
  // The pointer moves only once the checkpoint it names is complete on disk.
  write_file_atomic(run_dir / kLatestFile, name + "\n");
  // Checkpoints past this step belong to a continuation this run replaced (it resumed from an earlier one): drop
  // them so the scan in resolve_resume cannot prefer them. Then keep the newest `keep_last`.
  auto all = list_checkpoints(run_dir);
  std::erase_if(all, [&](const auto& c) {
    if (c.first <= ckpt.step) return false;
    fs::remove_all(c.second, ec);
    return true;
  });
  const std::size_t keep = static_cast<std::size_t>(keep_last);
  for (std::size_t i = 0; i + keep < all.size(); ++i) fs::remove_all(all[i].second, ec);
  return dir;
}

fs::path resolve_resume(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) throw IoError("--resume '" + path.string() + "': no such directory");
  if (fs::is_regular_file(path / kMetaFile)) return path;
  const fs::path pointer = path / kLatestFile;
  if (fs::is_regular_file(pointer)) {
    std::string name = read_file_text(pointer);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
    // A pointer naming anything but a complete checkpoint here is ignored in favour of the scan below.
    if (step_of_dir_name(name) >= 0 && fs::is_regular_file(path / name / kMetaFile)) return path / name;
  }
  auto all = list_checkpoints(path);
  if (all.empty())
    throw IoError("--resume '" + path.string() + "': no complete checkpoint (neither " + kMetaFile +
                  " in it nor a checkpoint-N/ directory holding one)");
  return all.back().second;
}

}  // namespace pocketlora
