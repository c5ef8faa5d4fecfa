#include "host/model/llama_config.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/util/json_field.h"

namespace pocketlora {

void LlamaConfig::validate(const std::string& origin) const {
  auto need = [&](std::int64_t v, const char* what) {
    if (v <= 0) throw FormatError(origin + ": " + what + " must be positive, got " + std::to_string(v));
  };
  need(dim, "hidden size");
  need(hidden_dim, "intermediate size");
  need(n_layers, "layer count");
  need(n_heads, "head count");
  need(n_kv_heads, "kv head count");
  need(head_dim, "head dim");
  need(vocab_size, "vocabulary size");
  // Upper bounds far above any released Llama (dim 16k, vocab 256k, 126 layers) keep every shape product the
  // loaders form (vocab * dim, heads * head_dim, ...) well inside int64 whatever a hostile header claims.
  auto at_most = [&](std::int64_t v, std::int64_t max, const char* what) {
    if (v > max)
      throw FormatError(origin + ": " + what + " " + std::to_string(v) + " exceeds the sanity limit " +
                        std::to_string(max));
  };
  at_most(dim, 1 << 20, "hidden size");
  at_most(hidden_dim, 1 << 22, "intermediate size");
  at_most(n_layers, 1 << 16, "layer count");
  at_most(n_heads, 1 << 16, "head count");
  at_most(n_kv_heads, 1 << 16, "kv head count");
  at_most(head_dim, 1 << 16, "head dim");
  at_most(vocab_size, 1 << 24, "vocabulary size");
  at_most(max_seq_len, std::int64_t{1} << 31, "context length");
  if (max_seq_len < 0) throw FormatError(origin + ": context length " + std::to_string(max_seq_len) + " is negative");
  if (n_heads % n_kv_heads != 0)
    throw FormatError(origin + ": " + std::to_string(n_heads) + " heads are not a multiple of " +
                      std::to_string(n_kv_heads) + " kv heads");
  if (head_dim % 2 != 0) throw FormatError(origin + ": head dim " + std::to_string(head_dim) + " must be even for RoPE");
  if (!(rms_eps > 0) || !(rope_theta > 0)) throw FormatError(origin + ": rms eps and rope theta must be positive");
}

std::vector<double> LlamaConfig::rope_inv_freq() const {
  auto f = pocketlora::rope_inv_freq(head_dim, rope_theta, rope_scaling);
  if (!rope_freq_factors.empty()) {
    if (rope_freq_factors.size() != f.size())
      throw FormatError("rope_freqs has " + std::to_string(rope_freq_factors.size()) + " factors, expected " +
                        std::to_string(f.size()) + " (head_dim / 2)");
    for (std::size_t i = 0; i < f.size(); ++i) f[i] /= rope_freq_factors[i];
  }
  return f;
}

bool LlamaConfig::same_architecture(const LlamaConfig& o) const {
  return dim == o.dim && hidden_dim == o.hidden_dim && n_layers == o.n_layers && n_heads == o.n_heads &&
         n_kv_heads == o.n_kv_heads && head_dim == o.head_dim && vocab_size == o.vocab_size &&
         std::fabs(rms_eps - o.rms_eps) <= 1e-6 * rms_eps /* GGUF stores eps as float32 */ && rope_theta == o.rope_theta &&
         (rope_scaling.has_value() || !rope_freq_factors.empty()) ==
             (o.rope_scaling.has_value() || !o.rope_freq_factors.empty());
}

std::string LlamaConfig::summary() const {
  return "dim " + std::to_string(dim) + ", hidden " + std::to_string(hidden_dim) + ", layers " +
         std::to_string(n_layers) + ", heads " + std::to_string(n_heads) + "/" + std::to_string(n_kv_heads) +
         " kv, head_dim " + std::to_string(head_dim) + ", vocab " + std::to_string(vocab_size) + ", ctx " +
         std::to_string(max_seq_len) + ", rope_theta " + std::to_string(rope_theta) +
         (rope_scaling || !rope_freq_factors.empty() ? " (llama3 scaling)" : "") + (tied_embeddings ? ", tied embeddings" : "");
}

LlamaConfig llama_config_from_hf(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open '" + path.string() + "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("'" + path.string() + "' is not valid JSON: " + e.what());
  }
  const std::string origin = "HF config '" + path.string() + "'";
  if (!j.is_object()) throw FormatError(origin + ": top level is " + j.type_name() + ", expected an object");
  auto get_int = [&](const char* key, std::optional<std::int64_t> dflt = std::nullopt) -> std::int64_t {
    if (dflt) return json_field::opt_int(j, key, origin).value_or(*dflt);
    return json_field::integer(j, key, origin);
  };
  LlamaConfig c;
  c.source = "hf";
  c.dim = get_int("hidden_size");
  c.hidden_dim = get_int("intermediate_size");
  c.n_layers = get_int("num_hidden_layers");
  c.n_heads = get_int("num_attention_heads");
  c.n_kv_heads = get_int("num_key_value_heads", c.n_heads);
  c.head_dim = get_int("head_dim", c.n_heads > 0 ? c.dim / c.n_heads : 0);
  c.vocab_size = get_int("vocab_size");
  c.max_seq_len = get_int("max_position_embeddings", 2048);
  c.rms_eps = json_field::opt_number(j, "rms_norm_eps", origin).value_or(1e-6);
  c.rope_theta = json_field::opt_number(j, "rope_theta", origin).value_or(10000.0);
  c.tied_embeddings = json_field::opt_bool(j, "tie_word_embeddings", origin).value_or(false);
  // Some configs list several EOS ids; only a single integer is used.
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_id = j["bos_token_id"].get<std::int64_t>();
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) c.eos_id = j["eos_token_id"].get<std::int64_t>();
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const auto& rs = j["rope_scaling"];
    const std::string where = origin + ", rope_scaling";
    const std::string type =
        json_field::opt_string(rs, "rope_type", where).value_or(json_field::opt_string(rs, "type", where).value_or(""));
    if (type != "llama3")
      throw FormatError(origin + ": rope_scaling type '" + type + "' is not supported (only 'llama3')");
    Llama3RopeScaling s;
    s.factor = json_field::opt_number(rs, "factor", where).value_or(s.factor);
    s.low_freq_factor = json_field::opt_number(rs, "low_freq_factor", where).value_or(s.low_freq_factor);
    s.high_freq_factor = json_field::opt_number(rs, "high_freq_factor", where).value_or(s.high_freq_factor);
    s.original_max_position_embeddings =
        json_field::opt_number(rs, "original_max_position_embeddings", where).value_or(s.original_max_position_embeddings);
    c.rope_scaling = s;
  }
  c.validate(origin);
  return c;
}

LlamaConfig llama_config_from_gguf(const GgufFile& g) {
  const std::string origin = "GGUF file '" + g.path().string() + "'";
  const std::string arch = g.has("general.architecture") ? g.get_string("general.architecture") : "";
  if (arch != "llama") throw FormatError(origin + ": general.architecture is '" + arch + "', expected 'llama'");
  LlamaConfig c;
  c.source = "gguf";
  auto u = [&](const char* k) { return static_cast<std::int64_t>(g.get_uint(k)); };
  c.dim = u("llama.embedding_length");
  c.hidden_dim = u("llama.feed_forward_length");
  c.n_layers = u("llama.block_count");
  c.n_heads = u("llama.attention.head_count");
  c.n_kv_heads = g.has("llama.attention.head_count_kv") ? u("llama.attention.head_count_kv") : c.n_heads;
  c.head_dim = g.has("llama.rope.dimension_count") ? u("llama.rope.dimension_count") : c.dim / std::max<std::int64_t>(1, c.n_heads);
  c.max_seq_len = g.has("llama.context_length") ? u("llama.context_length") : 0;
  c.rms_eps = g.get_float("llama.attention.layer_norm_rms_epsilon");
  c.rope_theta = g.has("llama.rope.freq_base") ? g.get_float("llama.rope.freq_base") : 10000.0;
  c.vocab_size = g.has("llama.vocab_size") ? u("llama.vocab_size")
                                             : static_cast<std::int64_t>(g.get_string_array("tokenizer.ggml.tokens").size());
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  if (g.find_tensor("rope_freqs.weight")) {
    Tensor f = g.load_f32("rope_freqs.weight");
    for (std::int64_t i = 0; i < f.numel(); ++i) {
      const double v = f.data<float>()[i];
      if (!(v > 0)) throw FormatError(origin + ": rope_freqs.weight[" + std::to_string(i) + "] is not positive");
      c.rope_freq_factors.push_back(v);
    }
  }
  if (g.has("tokenizer.ggml.bos_token_id")) c.bos_id = u("tokenizer.ggml.bos_token_id");
  if (g.has("tokenizer.ggml.eos_token_id")) c.eos_id = u("tokenizer.ggml.eos_token_id");
  c.validate(origin);
  return c;
}

const char* model_source_name(ModelSource s) {
  switch (s) {
    case ModelSource::Llama2c: return "llama2c";
    case ModelSource::Gguf: return "gguf";
    case ModelSource::Safetensors: return "safetensors";
    case ModelSource::Bnb4bit: return "bnb-4bit";
  }
  return "?";
}

}  // namespace pocketlora
