#pragma once
// The model handle: the loaded model and tokenizer, a backend of its runtime's kind, and (made on the first
// generation) the decoder with every store adapter it has applied resident. `mu` serialises generations and
// adapter loads; the fields above it never change after pl_model_load, so train jobs and adapter imports read
// them without it.
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/handle_registry.h"
#include "host/backend/backend.h"
#include "host/eval/resident_adapters.h"
#include "host/infer/decoder.h"
#include "host/model/llama_model.h"
#include "host/tokenizer/tokenizer.h"

struct pl_model : pocketlora::capi::Handle {
  std::filesystem::path path, tokenizer_path;
  pocketlora::BackendKind kind = pocketlora::BackendKind::Cpu;
  std::optional<int> device;
  std::string backend_description;
  pocketlora::LlamaModel model;
  std::unique_ptr<pocketlora::Tokenizer> tok;

  std::mutex mu;
  std::unique_ptr<pocketlora::Backend> be;
  std::unique_ptr<pocketlora::Decoder> decoder;
  pocketlora::ResidentAdapters resident;  // the store adapters the decoder holds
};
