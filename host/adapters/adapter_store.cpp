#include "host/adapters/adapter_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>

#include "host/adapters/gguf_lora.h"
#include "host/core/error.h"
#include "host/util/atomic_file.h"
#include "host/util/entry_name.h"
#include "host/util/file_lock.h"
#include "host/util/read_file.h"
#include "host/util/sha256.h"
#include "host/util/utc_time.h"

namespace pocketlora {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kLockFile = ".lock";

AdapterManifest read_manifest(const fs::path& dir) {
  const fs::path path = dir / kManifestFile;
  const std::string text = read_file_text(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError("adapter manifest '" + path.string() + "': not valid JSON (" + e.what() + ")");
  }
  AdapterManifest m = parse_adapter_manifest(j, "adapter manifest '" + path.string() + "'");
  // The directory name is the adapter's name: a rename killed before it rewrote the manifest left the old one.
  m.name = dir.filename().string();
  return m;
}

void write_manifest(const fs::path& dir, const AdapterManifest& m) {
  write_file_atomic(dir / kManifestFile, adapter_manifest_json(m).dump(2) + "\n");
}

// The manifest's files are present with their recorded sizes (cheap: what list() checks), and with `digests`
// their SHA-256s too.
void verify_files(const fs::path& dir, const AdapterManifest& m, bool digests) {
  const std::string origin = "adapter manifest '" + (dir / kManifestFile).string() + "': field 'files'";
  // Exactly the PEFT pair: a name from the manifest is never a path out of the adapter's directory.
  for (const auto& f : m.files)
    if (f.name != kPeftWeightsFile && f.name != kPeftConfigFile)
      throw FormatError(origin + ": unexpected file '" + f.name + "' (expected " + kPeftWeightsFile + " and " +
                        kPeftConfigFile + ")");
  for (const char* required : {kPeftWeightsFile, kPeftConfigFile})
    if (std::none_of(m.files.begin(), m.files.end(), [&](const AdapterFileRecord& f) { return f.name == required; }))
      throw FormatError(origin + ": no entry for " + required);
  for (const auto& f : m.files) {
    const fs::path p = dir / f.name;
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) throw IoError("adapter file '" + p.string() + "': " + ec.message());
    if (size != f.size)
      throw FormatError(
          fmt::format("adapter file '{}': expected {} bytes (manifest), found {}", p.string(), f.size, size));
    if (digests) {
      const std::string found = sha256_file(p);
      if (found != f.sha256)
        throw FormatError(fmt::format("adapter file '{}': SHA-256 {} does not match the manifest's {} (corrupted)",
                                      p.string(), found, f.sha256));
    }
  }
}

bool is_store_entry(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  return !name.empty() && name[0] != '.' && !is_atomic_temp_name(name);
}

}  // namespace

void validate_adapter_name(const std::string& name) { validate_entry_name("adapter", name); }

fs::path AdapterStore::default_root() {
  if (const char* home = std::getenv("POCKETLORA_HOME"); home && *home) return fs::path(home) / "adapters";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".pocketlora" / "adapters";
  throw InvalidArgument("no adapter store directory: set POCKETLORA_HOME or HOME, or pass --store");
}

AdapterStore::AdapterStore(fs::path root) : root_(std::move(root)) {}

fs::path AdapterStore::adapter_dir(const std::string& name) const {
  validate_adapter_name(name);
  return root_ / name;
}

AdapterListing AdapterStore::list() const {
  AdapterListing out;
  std::error_code ec;
  if (!fs::exists(root_, ec)) return out;
  fs::directory_iterator it(root_, ec);
  if (ec) {
    out.problems.push_back({root_, "cannot list the adapter store: " + ec.message()});
    return out;
  }
  auto read_entry = [](const fs::path& dir) {
    if (!fs::is_directory(dir)) throw FormatError("not an adapter directory (a stray file in the store)");
    validate_adapter_name(dir.filename().string());
    AdapterManifest m = read_manifest(dir);
    verify_files(dir, m, false);
    return m;
  };
  for (const auto& e : it) {
    if (!is_store_entry(e)) continue;
    // A writer may delete, rename or replace the entry while it is read: gone is skipped, and a failure is
    // reported only if it repeats (a replaced adapter reads whole the second time; a broken one fails again).
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        out.adapters.push_back(read_entry(e.path()));
        break;
      } catch (const std::exception& ex) {
        std::error_code gone;
        if (!fs::exists(e.path(), gone) && !gone) break;
        if (attempt == 1) out.problems.push_back({e.path(), ex.what()});
      }
    }
  }
  std::sort(out.adapters.begin(), out.adapters.end(),
            [](const AdapterManifest& a, const AdapterManifest& b) { return a.name < b.name; });
  std::sort(out.problems.begin(), out.problems.end(),
            [](const AdapterStoreProblem& a, const AdapterStoreProblem& b) { return a.path < b.path; });
  return out;
}

AdapterManifest AdapterStore::show(const std::string& name) const {
  const fs::path dir = adapter_dir(name);
  if (!fs::is_directory(dir)) throw InvalidArgument("no adapter '" + name + "' in the store '" + root_.string() + "'");
  AdapterManifest m = read_manifest(dir);
  verify_files(dir, m, true);
  return m;
}

AdapterManifest AdapterStore::add(const fs::path& src, const std::string& name, const AdapterBase& base,
                                  const AdapterOrigin& origin, bool force) {
  const fs::path dir = adapter_dir(name);
  // Read and check before taking the lock or writing anything: a bad source leaves the store untouched.
  const PeftAdapter adapter = read_peft_adapter(src, base.config, base.qk_layout);
  const bool known_base = !origin.base_fingerprint.empty();
  if (known_base && origin.base_fingerprint != base.fingerprint && !force)
    throw InvalidArgument(fmt::format(
        "adapter '{}' was trained on another base model: its checkpoint records base fingerprint {}, the model given "
        "has {} (pass --force to import it anyway)",
        src.string(), origin.base_fingerprint, base.fingerprint));

  FileLock lock(root_ / kLockFile);  // serialises writers of one store; readers never take it
  remove_stale_atomic_temps(root_);
  if (fs::exists(dir)) throw InvalidArgument("adapter '" + name + "' already exists in '" + root_.string() + "'");

  AdapterManifest m;
  m.name = name;
  m.enabled = true;
  m.created = utc_now_iso8601();
  m.base_fingerprint = known_base ? origin.base_fingerprint : base.fingerprint;
  m.base_quant = !origin.base_quant.empty() ? origin.base_quant : base.base_quant;
  m.base_model = base.model_name;
  m.base_from_training_run = known_base;
  m.rank = adapter.config.r;
  m.alpha = adapter.config.lora_alpha;
  m.dropout = adapter.config.lora_dropout;
  m.rslora = adapter.config.use_rslora;
  m.targets = adapter.config.targets;
  m.steps = origin.steps;
  m.final_loss = origin.final_loss;
  m.final_val_loss = origin.final_val_loss;

  AtomicDirWriter writer(dir);
  for (const char* file : {kPeftWeightsFile, kPeftConfigFile}) {
    std::error_code ec;
    fs::copy_file(src / file, writer.dir() / file, ec);
    if (ec) throw IoError("cannot copy '" + (src / file).string() + "' into the adapter store: " + ec.message());
    AdapterFileRecord f;
    f.name = file;
    f.size = fs::file_size(writer.dir() / file);
    f.sha256 = sha256_file(writer.dir() / file);
    m.size_bytes += f.size;
    m.files.push_back(std::move(f));
  }
  write_manifest(writer.dir(), m);
  writer.commit();
  return m;
}

void AdapterStore::set_enabled(const std::string& name, bool enabled) {
  const fs::path dir = adapter_dir(name);
  FileLock lock(root_ / kLockFile);
  if (!fs::is_directory(dir)) throw InvalidArgument("no adapter '" + name + "' in the store '" + root_.string() + "'");
  AdapterManifest m = read_manifest(dir);
  m.enabled = enabled;
  write_manifest(dir, m);
}

void AdapterStore::rename(const std::string& from, const std::string& to) {
  const fs::path src = adapter_dir(from);
  const fs::path dst = adapter_dir(to);
  FileLock lock(root_ / kLockFile);
  if (!fs::is_directory(src)) throw InvalidArgument("no adapter '" + from + "' in the store '" + root_.string() + "'");
  if (fs::exists(dst)) throw InvalidArgument("adapter '" + to + "' already exists in '" + root_.string() + "'");
  AdapterManifest m = read_manifest(src);  // refuse to carry a corrupt adapter under a new name
  if (::rename(src.c_str(), dst.c_str()) != 0)
    throw IoError("cannot rename '" + src.string() + "' to '" + dst.string() + "': " + std::strerror(errno));
  m.name = to;
  write_manifest(dst, m);
}

void AdapterStore::export_peft(const std::string& name, const fs::path& out_dir) const {
  const fs::path dir = adapter_dir(name);
  show(name);  // the digests are verified before anything is copied out
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw IoError("cannot create '" + out_dir.string() + "': " + ec.message());
  // Weights before config, as write_peft_adapter orders them: a kill leaves a config only beside its weights.
  for (const char* file : {kPeftWeightsFile, kPeftConfigFile}) {
    const std::string bytes = read_file_text(dir / file);
    write_file_atomic(out_dir / file, bytes);
  }
}

void AdapterStore::remove(const std::string& name) {
  const fs::path dir = adapter_dir(name);
  FileLock lock(root_ / kLockFile);
  if (!fs::is_directory(dir)) throw InvalidArgument("no adapter '" + name + "' in the store '" + root_.string() + "'");
  // One rename takes it out of every listing; a kill during the removal leaves a temporary the next writer clears.
  fs::path doomed = dir;
  doomed += ".deleting.tmp." + std::to_string(::getpid());
  if (::rename(dir.c_str(), doomed.c_str()) != 0)
    throw IoError("cannot rename '" + dir.string() + "' for removal: " + std::strerror(errno));
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec)
    throw IoError("adapter '" + name + "' removed from the store, but '" + doomed.string() +
                  "' could not be deleted: " + ec.message());
}

AdapterManifest AdapterStore::check_base(const std::string& name, std::string_view fingerprint, bool force) const {
  AdapterManifest m = show(name);
  if (force) return m;
  if (!m.enabled)
    throw InvalidArgument("adapter '" + name + "' is disabled (enable it with `pocketlora adapters enable " + name +
                          "`, or force)");
  if (m.base_fingerprint != fingerprint)
    throw InvalidArgument(fmt::format(
        "adapter '{}' belongs to another base model: base fingerprint expected {} (the adapter's, trained with "
        "quant {}), found {} (this model); force to apply it anyway",
        name, m.base_fingerprint, m.base_quant, fingerprint));
  return m;
}

void AdapterStore::export_gguf(const std::string& name, const AdapterBase& base, const fs::path& out_file, DType dtype,
                               bool force) const {
  if (dtype != DType::F32 && dtype != DType::F16)
    throw InvalidArgument(std::string("GGUF-LoRA export of adapter '") + name + "': dtype " + dtype_name(dtype) +
                          ", expected f32 or f16");
  write_gguf_lora(out_file, load(name, base, force), base.config, base.qk_layout, dtype);
}

std::optional<fs::path> AdapterStore::recorded_base_path(const std::string& name) const {
  const AdapterManifest m = show(name);
  std::vector<std::string> candidates = {m.base_model};
  // The PEFT config's base_model_name_or_path: the trainer records the --model path there.
  const auto config = nlohmann::json::parse(read_file_text(adapter_dir(name) / kPeftConfigFile), nullptr, false);
  if (config.is_object() && config.contains("base_model_name_or_path") && config["base_model_name_or_path"].is_string())
    candidates.push_back(config["base_model_name_or_path"].get<std::string>());
  for (const auto& c : candidates) {
    std::error_code ec;
    if (!c.empty() && fs::exists(c, ec)) return fs::path(c);
  }
  return std::nullopt;
}

PeftAdapter AdapterStore::load(const std::string& name, const AdapterBase& base, bool force) const {
  check_base(name, base.fingerprint, force);
  return read_peft_adapter(adapter_dir(name), base.config, base.qk_layout);
}

}  // namespace pocketlora
