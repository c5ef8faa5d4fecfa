#pragma once
// One Llama configuration, whatever file it came from (HF config.json, GGUF metadata, llama2.c header).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "host/core/op/rope.h"

namespace pocketlora {

class GgufFile;

struct LlamaConfig {
  std::int64_t dim = 0;          // hidden size
  std::int64_t hidden_dim = 0;   // MLP intermediate size
  std::int64_t n_layers = 0;
  std::int64_t n_heads = 0;
  std::int64_t n_kv_heads = 0;
  std::int64_t head_dim = 0;     // usually dim / n_heads
  std::int64_t vocab_size = 0;
  std::int64_t max_seq_len = 0;  // context length the checkpoint declares
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  std::optional<Llama3RopeScaling> rope_scaling;
  // GGUF stores Llama 3 scaling as a `rope_freqs.weight` tensor of per-frequency divisors (llama.cpp's
  // convert_hf_to_gguf computes them from the same formula); empty when absent.
  std::vector<double> rope_freq_factors;
  bool tied_embeddings = false;  // the file stores no separate output matrix (or says it is tied)
  std::optional<std::int64_t> bos_id, eos_id;
  std::string source;            // "hf", "gguf", "llama2c"

  std::int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // RoPE inverse frequencies with whichever scaling the checkpoint declared (HF parameters or GGUF factors).
  std::vector<double> rope_inv_freq() const;
  // Throws FormatError naming `origin` when fields are missing, non-positive or inconsistent.
  void validate(const std::string& origin) const;
  // True when the architecture (everything that shapes the weights and the math) matches.
  bool same_architecture(const LlamaConfig& o) const;
  std::string summary() const;
};

LlamaConfig llama_config_from_hf(const std::filesystem::path& config_json);
LlamaConfig llama_config_from_gguf(const GgufFile& gguf);

// Which file format a model was read from.
enum class ModelSource { Llama2c, Gguf, Safetensors, Bnb4bit };
const char* model_source_name(ModelSource s);  // "llama2c", "gguf", "safetensors", "bnb-4bit"

}  // namespace pocketlora
