#pragma once
// One model loaded for generation by `pocketlora serve`: its weights on a backend, its tokenizer, one decoder with
// every store adapter used so far resident (hot-swapped per request: no reload of the base). Requests on the same
// model run one at a time (the decoder has one KV cache); different models run side by side.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "host/adapters/adapter_store.h"
#include "host/backend/backend.h"
#include "host/eval/resident_adapters.h"
#include "host/infer/decoder.h"
#include "host/infer/generate.h"
#include "host/model/llama_model.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora::serve {

struct GenerateRequest {
  std::optional<std::string> adapter;  // a store adapter; none: the base model
  float scale = 1.0f;
  std::string prompt;
  std::int64_t max_tokens = 128;
  SamplingOptions sampling;
  bool chat = false;  // wrap the prompt in the tokenizer's chat template
};

struct GenerateOutcome {
  std::int64_t tokens = 0;
  double tokens_per_s = 0;
  std::string stop;  // "eos", "max_tokens", "cancelled"
};

class ModelSession {
 public:
  ModelSession(const std::filesystem::path& model, const std::filesystem::path& tokenizer, BackendKind backend);
  const LlamaModel& model() const { return model_; }

  // Streams each piece of text (valid UTF-8) with its token id to `on_piece`; on_piece returning false (the client
  // went away) cancels the generation before the next token's forward.
  GenerateOutcome generate(const GenerateRequest& r, const AdapterStore& store,
                           const std::function<bool(const std::string& text, std::int32_t id)>& on_piece);

 private:
  std::filesystem::path path_;
  LlamaModel model_;
  std::unique_ptr<Tokenizer> tok_;
  std::mutex mu_;  // the backend, decoder and resident adapters below
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Decoder> decoder_;
  ResidentAdapters resident_;
};

}  // namespace pocketlora::serve
