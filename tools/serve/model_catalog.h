#pragma once
// The models the app offers (docs/APP.md): every entry of DATA/models/ that loads as a model (a llama2.c .bin
// with its tokenizer beside it, a GGUF, a Hugging Face folder), plus each `serve --model PATH`. Entries are
// identified by name (the file's stem or the folder's name); a name given twice keeps the registered one.
// Headers are read once per file version (path, size, mtime) and cached; models that are used for generation are
// loaded once and kept (ModelSession), so requests never reload a base.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/backend/backend.h"
#include "host/model/llama_config.h"

namespace pocketlora::serve {

class ModelSession;

struct ModelEntry {
  std::string name;
  std::filesystem::path path, tokenizer;
  std::string format;  // "llama2c", "gguf", "hf"
  std::uint64_t size_bytes = 0;
  LlamaConfig config;
};

nlohmann::json model_entry_json(const ModelEntry& m);

class ModelCatalog {
 public:
  ModelCatalog(std::filesystem::path models_dir, std::vector<std::filesystem::path> registered, BackendKind backend);
  ~ModelCatalog();

  // Every model, by name; entries of models/ that do not load are left out (a tokenizer file beside a model is one).
  std::vector<ModelEntry> list();
  // not_found naming the model and what is offered.
  ModelEntry find(const std::string& name);
  // The model loaded for generation (once; later calls share it).
  std::shared_ptr<ModelSession> session(const std::string& name);

 private:
  struct Cached {
    std::uintmax_t size = 0;
    std::filesystem::file_time_type mtime;
    ModelEntry entry;
  };
  std::optional<ModelEntry> probe(const std::filesystem::path& path);
  std::filesystem::path dir_;
  std::vector<std::filesystem::path> registered_;
  BackendKind backend_;
  std::mutex mu_;
  std::map<std::filesystem::path, Cached> headers_;  // under mu_
  std::map<std::string, std::shared_ptr<ModelSession>> sessions_;  // by name, under mu_
};

}  // namespace pocketlora::serve
