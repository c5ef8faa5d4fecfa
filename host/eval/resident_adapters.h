#pragma once
// Store adapters made resident in a Decoder on first use, for callers that generate with one loaded base and
// switch adapters per request (the C API's pl_generate, `pocketlora serve`): an adapter is loaded and uploaded
// once, then selected by its index. Keyed by the store's directory and the adapter's content (its files'
// SHA-256s), so an adapter replaced under the same name is loaded again rather than served stale.
// Not thread-safe: the caller serialises use with the decoder's own lock.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>

#include "host/adapters/adapter_store.h"
#include "host/infer/decoder.h"
#include "host/model/llama_model.h"

namespace pocketlora {

class ResidentAdapters {
 public:
  // The decoder's index of store adapter `name` for the base `model` (read from `model_path`): the manifest and
  // files verified, InvalidArgument when absent or disabled, the base fingerprint checked (AdapterStore::load).
  std::size_t index(Decoder& decoder, const LlamaModel& model, const std::filesystem::path& model_path,
                    const AdapterStore& store, const std::string& name);

 private:
  std::map<std::string, std::size_t> by_content_;
};

}  // namespace pocketlora
