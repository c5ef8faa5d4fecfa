#pragma once
// The on-device adapter store: a directory of trained LoRA adapters that the app (later through the C API) and
// `pocketlora adapters` list, import, enable/disable, rename, export, delete and check against a base model.
//
//   STORE/
//     .lock                          writers hold an exclusive flock on it (readers never lock)
//     NAME/                          one adapter; the directory name is the adapter's name
//       adapter_model.safetensors    the PEFT pair, byte for byte as the trainer (or PEFT) wrote it
//       adapter_config.json
//       manifest.json                name, base model identity, LoRA shape, training metrics, file sizes and
//                                    SHA-256s, enabled flag (schema: docs/ADAPTER_STORE.md, format_version 1)
//     NAME.tmp.<pid>/                an add or delete in progress (or killed): never listed, removed by the next
//                                    writer once <pid> is gone
//
// One manifest per adapter, not one index at the root: an adapter and its manifest appear and disappear together
// with one rename(2) of its directory, so no second file has to be kept in step with the directory tree (a kill
// between the two would leave an index naming a missing adapter or missing a present one), a corrupt manifest
// costs one adapter rather than the whole store, and enabling one adapter rewrites only its own small file.
// Atomicity: add builds NAME.tmp.<pid>/ (files fsynced) and renames it onto NAME; delete renames NAME onto a
// temp name before removing it; enable/disable rewrite manifest.json with write_file_atomic; rename is one
// rename(2) of the directory followed by a rewrite of the manifest's name field (a kill in between leaves the
// adapter under its new name with the old name inside; the directory name wins). A reader therefore sees every
// adapter in its old or its new state, never half of one.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/adapters/adapter_store_manifest.h"
#include "host/adapters/peft_export.h"
#include "host/core/op/rope.h"
#include "host/model/llama_config.h"

namespace pocketlora {

// validate_entry_name (host/util/entry_name.h) for an adapter: "adapter name 'NAME': RULE".
void validate_adapter_name(const std::string& name);

// What the training run that produced an adapter recorded, when the source is a `pocketlora train --out`
// directory (host/train/adapter_origin.h reads it); every field may be unknown.
struct AdapterOrigin {
  std::string base_fingerprint;  // the checkpoint's base_model_fingerprint; empty: unknown
  std::string base_quant;        // "nf4" / "none" as trained; empty: unknown
  std::optional<std::int64_t> steps;
  std::optional<double> final_loss, final_val_loss;
};

// The base model an adapter is imported for or applied to. `fingerprint` is base_model_fingerprint(model,
// quant) (host/train/base_fingerprint.h) for the quantization the adapter was trained with (its manifest's
// base_quant, or the origin's on add), so the same file checks equal whichever way the caller holds it.
struct AdapterBase {
  LlamaConfig config;
  RopeLayout qk_layout = RopeLayout::Interleaved;
  std::string fingerprint;
  std::string base_quant;  // the quantization `fingerprint` was computed for
  std::string model_name;  // the model's file name, recorded for people (not compared)
};

// An entry of the store that could not be read: skipped by list(), reported with its path.
struct AdapterStoreProblem {
  std::filesystem::path path;
  std::string message;
};

struct AdapterListing {
  std::vector<AdapterManifest> adapters;  // by name
  std::vector<AdapterStoreProblem> problems;
};

class AdapterStore {
 public:
  // $POCKETLORA_HOME/adapters, else $HOME/.pocketlora/adapters.
  static std::filesystem::path default_root();

  // The directory is created on the first write; a store that does not exist lists as empty.
  explicit AdapterStore(std::filesystem::path root);
  const std::filesystem::path& root() const { return root_; }

  // Every adapter whose manifest and files look whole (manifest parsed, files present with their recorded
  // sizes); anything else is a problem naming its path, never an exception. Temporaries are ignored.
  AdapterListing list() const;
  // One adapter, its files' SHA-256s verified: InvalidArgument if absent, FormatError naming the file otherwise.
  AdapterManifest show(const std::string& name) const;

  // Imports the PEFT pair of `src` (a `train --out` directory or any PEFT adapter directory), checked with
  // read_peft_adapter against base.config. Refuses an existing name, and an origin fingerprint that differs from
  // base.fingerprint unless `force` (the adapter was trained on another base; the manifest then keeps the
  // training run's fingerprint). Returns the new manifest.
  AdapterManifest add(const std::filesystem::path& src, const std::string& name, const AdapterBase& base,
                      const AdapterOrigin& origin, bool force = false);
  void set_enabled(const std::string& name, bool enabled);
  void rename(const std::string& from, const std::string& to);
  // Copies the PEFT pair (verified) into out_dir, created if needed; existing files there are replaced atomically.
  void export_peft(const std::string& name, const std::filesystem::path& out_dir) const;
  // The adapter as one llama.cpp GGUF-LoRA file (host/adapters/gguf_lora.h's writer, `dtype` F32 or F16), written
  // atomically. `base` supplies the head layout that moving q/k rows into GGUF's order needs; it is checked as
  // load() checks it (fingerprint, enabled flag; `force` skips both), then the tensors against base.config.
  void export_gguf(const std::string& name, const AdapterBase& base, const std::filesystem::path& out_file,
                   DType dtype = DType::F32, bool force = false) const;
  // Where the adapter says its base model is: the manifest's base model, else adapter_config.json's
  // base_model_name_or_path, whichever names an existing file or directory; nullopt when neither does.
  std::optional<std::filesystem::path> recorded_base_path(const std::string& name) const;
  void remove(const std::string& name);

  // The check before applying an adapter: InvalidArgument naming the adapter, expected and found fingerprints when
  // `fingerprint` (see AdapterBase) is not the one the adapter was trained on, or when the adapter is disabled,
  // unless `force`. Returns the (verified) manifest.
  AdapterManifest check_base(const std::string& name, std::string_view fingerprint, bool force = false) const;
  // check_base, then the adapter's tensors read against base.config.
  PeftAdapter load(const std::string& name, const AdapterBase& base, bool force = false) const;

 private:
  std::filesystem::path adapter_dir(const std::string& name) const;
  std::filesystem::path root_;
};

}  // namespace pocketlora
