#include "tools/serve/model_catalog.h"

#include <fmt/format.h>

#include <algorithm>

#include "host/core/error.h"
#include "host/model/llama_model.h"
#include "host/train/lora_config.h"
#include "host/train/trainer.h"
#include "host/util/atomic_file.h"
#include "tools/serve/app_error.h"
#include "tools/serve/model_session.h"

namespace pocketlora::serve {

namespace fs = std::filesystem;

namespace {

std::uintmax_t entry_size(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return fs::file_size(p, ec);
  std::uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

std::string entry_name(const fs::path& p) {
  return fs::is_directory(p) ? p.filename().string() : p.stem().string();
}

}  // namespace

nlohmann::json model_entry_json(const ModelEntry& m) {
  const LlamaConfig& c = m.config;
  nlohmann::json targets = nlohmann::json::array();
  for (LoraTarget t : kAllLoraTargets) targets.push_back(lora_target_name(t));
  return {{"name", m.name},
          {"path", m.path.string()},
          {"tokenizer", m.tokenizer.string()},
          {"format", m.format},
          {"size_bytes", m.size_bytes},
          {"config",
           {{"dim", c.dim},
            {"hidden_dim", c.hidden_dim},
            {"n_layers", c.n_layers},
            {"n_heads", c.n_heads},
            {"n_kv_heads", c.n_kv_heads},
            {"vocab_size", c.vocab_size},
            {"max_seq_len", c.max_seq_len}}},
          {"targets", targets}};
}

ModelCatalog::ModelCatalog(fs::path models_dir, std::vector<fs::path> registered, BackendKind backend)
    : dir_(std::move(models_dir)), backend_(backend) {
  for (auto& p : registered) {
    if (!fs::exists(p)) throw IoError(fmt::format("--model {}: not found", p.string()));
    registered_.push_back(fs::absolute(p));
  }
}

ModelCatalog::~ModelCatalog() = default;

// Called with mu_ held. A model whose header (and tokenizer) loads; nullopt for anything else.
std::optional<ModelEntry> ModelCatalog::probe(const fs::path& path) {
  std::error_code ec;
  const std::uintmax_t size = entry_size(path);
  const auto mtime = fs::last_write_time(path, ec);
  if (auto it = headers_.find(path); it != headers_.end() && it->second.size == size && it->second.mtime == mtime)
    return it->second.entry;
  try {
    // Deferred: only headers and shapes are read, no weight is converted.
    const LlamaModel m = load_llama_model(path, BaseQuant::None, BaseLoad::Deferred);
    ModelEntry e{entry_name(path), path, find_tokenizer(path), model_source_name(m.source), size, m.config};
    headers_[path] = {size, mtime, e};
    return e;
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::vector<ModelEntry> ModelCatalog::list() {
  std::lock_guard lock(mu_);
  std::map<std::string, ModelEntry> by_name;
  std::error_code ec;
  if (fs::is_directory(dir_, ec))
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string n = e.path().filename().string();
      if (n.starts_with(".") || is_atomic_temp_name(n)) continue;
      if (auto m = probe(e.path())) by_name[m->name] = *m;
    }
  for (const auto& p : registered_) {
    auto m = probe(p);
    if (!m) {  // a registered model that stopped loading is an error worth seeing, not a silent omission
      load_llama_model(p, BaseQuant::None, BaseLoad::Deferred);
      find_tokenizer(p);
    }
    if (m) by_name[m->name] = *m;
  }
  std::vector<ModelEntry> out;
  for (auto& [name, m] : by_name) out.push_back(std::move(m));
  return out;
}

ModelEntry ModelCatalog::find(const std::string& name) {
  const std::vector<ModelEntry> all = list();
  for (const auto& m : all)
    if (m.name == name) return m;
  std::string offered;
  for (const auto& m : all) offered += (offered.empty() ? "" : ", ") + m.name;
  throw not_found(fmt::format("model '{}' not found (offered: {})", name, offered.empty() ? "none" : offered));
}

std::shared_ptr<ModelSession> ModelCatalog::session(const std::string& name) {
  const ModelEntry m = find(name);
  std::lock_guard lock(mu_);
  auto& s = sessions_[name];
  if (!s) s = std::make_shared<ModelSession>(m.path, m.tokenizer, backend_);
  return s;
}

}  // namespace pocketlora::serve
