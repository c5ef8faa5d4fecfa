#include "host/adapters/merged_safetensors.h"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "host/adapters/adapter_modules.h"
#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/util/atomic_file.h"

namespace pocketlora {

namespace {

nlohmann::ordered_json config_json(const LlamaConfig& c, const std::optional<std::filesystem::path>& hf_config) {
  nlohmann::ordered_json cfg;
  if (hf_config) {
    std::ifstream in(*hf_config);
    if (!in) throw IoError("cannot read '" + hf_config->string() + "'");
    try {
      cfg = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(hf_config->string() + ": not valid JSON: " + e.what());
    }
    return cfg;
  }
  if (!c.rope_freq_factors.empty())
    throw InvalidArgument(
        "cannot write an HF config.json for a GGUF base with rope_freqs.weight (Llama 3 scaling given as factors, "
        "not as HF's rope_scaling parameters): export to GGUF instead");
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg["model_type"] = "llama";
  cfg["hidden_size"] = c.dim;
  cfg["intermediate_size"] = c.hidden_dim;
  cfg["num_hidden_layers"] = c.n_layers;
  cfg["num_attention_heads"] = c.n_heads;
  cfg["num_key_value_heads"] = c.n_kv_heads;
  if (c.head_dim * c.n_heads != c.dim) cfg["head_dim"] = c.head_dim;
  cfg["vocab_size"] = c.vocab_size;
  cfg["max_position_embeddings"] = c.max_seq_len;
  cfg["rms_norm_eps"] = c.rms_eps;
  cfg["rope_theta"] = c.rope_theta;
  if (c.rope_scaling)
    cfg["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", c.rope_scaling->factor},
                           {"low_freq_factor", c.rope_scaling->low_freq_factor},
                           {"high_freq_factor", c.rope_scaling->high_freq_factor},
                           {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings}};
  cfg["hidden_act"] = "silu";
  cfg["tie_word_embeddings"] = c.tied_embeddings;
  if (c.bos_id) cfg["bos_token_id"] = *c.bos_id;
  if (c.eos_id) cfg["eos_token_id"] = *c.eos_id;
  return cfg;
}

}  // namespace

void write_llama_safetensors(const std::filesystem::path& dir, const LlamaWeights& weights, DType dtype,
                             const std::optional<std::filesystem::path>& hf_config) {
  if (dtype != DType::F32 && dtype != DType::F16)
    throw InvalidArgument(std::string("HF safetensors export: dtype ") + dtype_name(dtype) + " (expected f32 or f16)");
  const LlamaConfig& c = weights.config;
  std::vector<std::pair<std::string, Tensor>> out;
  const auto add = [&](const std::string& hf, const Tensor& t) { out.emplace_back(hf, t.to(dtype)); };
  add("model.embed_tokens.weight", weights.at("tok_embeddings"));
  add("model.norm.weight", weights.at("norm"));
  if (!c.tied_embeddings) add("lm_head.weight", weights.at("output"));
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    add(h + "input_layernorm.weight", weights.at(p + "attention_norm"));
    add(h + "post_attention_layernorm.weight", weights.at(p + "ffn_norm"));
    // HF keeps q/k rows in rotate_half order (the permutation load_llama_weights undid on load).
    for (const auto& m : kAdapterModules)
      add(h + m.peft_path + ".weight",
          linear_rows_to_layout(weights.at(p + m.weights), c, m.name, RopeLayout::Interleaved, RopeLayout::RotateHalf));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  nlohmann::ordered_json cfg = config_json(c, hf_config);
  cfg["torch_dtype"] = dtype == DType::F16 ? "float16" : "float32";
  cfg.erase("quantization_config");  // a bnb-4bit base's config describes its NF4 weights, not these
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create directory '" + dir.string() + "': " + ec.message());
  write_safetensors(dir / "model.safetensors", out, {{"format", "pt"}});
  write_file_atomic(dir / "config.json", cfg.dump(2) + "\n");
}

}  // namespace pocketlora
