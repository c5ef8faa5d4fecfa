#include "host/adapters/merged_gguf.h"

#include <cmath>

#include "host/core/error.h"
#include "host/formats/ggml_quantize.h"
#include "host/formats/gguf_writer.h"

namespace pocketlora {

namespace {

// llama-quant.cpp's use_more_bits: the first and last eighth of the layers and every third one between.
bool use_more_bits(std::int64_t i_layer, std::int64_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

std::int64_t layer_of(const std::string& name) {
  // "blk.{i}.": the tensors passed here are always of that form when they belong to a layer.
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(name.substr(4, name.find('.', 4) - 4));
}

GgmlType base_type(GgufFileType f) {
  switch (f) {
    case GgufFileType::F32: return GgmlType::F32;
    case GgufFileType::F16: return GgmlType::F16;
    case GgufFileType::Q4_0: return GgmlType::Q4_0;
    case GgufFileType::Q8_0: return GgmlType::Q8_0;
    case GgufFileType::Q4_K_M: return GgmlType::Q4_K;
  }
  throw InternalError("base_type: unknown file type");
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

GgufFileType parse_gguf_file_type(const std::string& s) {
  if (s == "f32") return GgufFileType::F32;
  if (s == "f16") return GgufFileType::F16;
  if (s == "q8_0") return GgufFileType::Q8_0;
  if (s == "q4_0") return GgufFileType::Q4_0;
  if (s == "q4_k_m") return GgufFileType::Q4_K_M;
  throw InvalidArgument("GGUF type '" + s + "': expected f32, f16, q8_0, q4_0 or q4_k_m");
}

GgmlType gguf_tensor_type(GgufFileType ftype, const std::string& name, std::int64_t row, std::int64_t n_layers) {
  if (row == 0 || ftype == GgufFileType::F32) return GgmlType::F32;
  if (ftype == GgufFileType::F16) return GgmlType::F16;
  GgmlType t = base_type(ftype);
  if (name == "output.weight") {
    if (row % 256 != 0) t = GgmlType::Q8_0;
    else if (t != GgmlType::Q8_0) t = GgmlType::Q6_K;
  } else if (ftype == GgufFileType::Q4_K_M && (contains(name, "attn_v.weight") || contains(name, "ffn_down"))) {
    if (use_more_bits(layer_of(name), n_layers)) t = GgmlType::Q6_K;
  }
  if (row % ggml_block_layout(t).first != 0) {
    if (t == GgmlType::Q4_K) t = GgmlType::Q5_0;
    else if (t == GgmlType::Q6_K) t = GgmlType::Q8_0;
    if (row % ggml_block_layout(t).first != 0) t = GgmlType::F16;
  }
  return t;
}

void set_llama_gguf_hparams(GgufWriter& w, const LlamaConfig& c) {
  w.set_u32("llama.context_length", static_cast<std::uint32_t>(c.max_seq_len));
  w.set_u32("llama.embedding_length", static_cast<std::uint32_t>(c.dim));
  w.set_u32("llama.block_count", static_cast<std::uint32_t>(c.n_layers));
  w.set_u32("llama.feed_forward_length", static_cast<std::uint32_t>(c.hidden_dim));
  w.set_u32("llama.attention.head_count", static_cast<std::uint32_t>(c.n_heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(c.n_kv_heads));
  w.set_u32("llama.rope.dimension_count", static_cast<std::uint32_t>(c.head_dim));
  if (c.head_dim * c.n_heads != c.dim) {
    w.set_u32("llama.attention.key_length", static_cast<std::uint32_t>(c.head_dim));
    w.set_u32("llama.attention.value_length", static_cast<std::uint32_t>(c.head_dim));
  }
  w.set_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  w.set_f32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  w.set_u32("llama.vocab_size", static_cast<std::uint32_t>(c.vocab_size));
}

void write_llama_gguf(const std::filesystem::path& path, const LlamaWeights& weights, GgufFileType ftype,
                      const std::optional<std::filesystem::path>& tokenizer_gguf, const std::string& name) {
  const LlamaConfig& c = weights.config;
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "model");
  if (!name.empty()) w.set_string("general.name", name);
  w.set_u32("general.file_type", static_cast<std::uint32_t>(ftype));
  if (ftype != GgufFileType::F32 && ftype != GgufFileType::F16) w.set_u32("general.quantization_version", 2);
  set_llama_gguf_hparams(w, c);
  if (tokenizer_gguf) {
    const GgufFile tok = GgufFile::open(*tokenizer_gguf);
    for (const auto& [key, value] : tok.metadata())
      if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
  }

  const auto add = [&](const std::string& gguf_name, const std::string& ours) {
    const Tensor t = weights.at(ours).to(DType::F32);
    std::vector<std::int64_t> ne(t.shape().rbegin(), t.shape().rend());
    const GgmlType type = gguf_tensor_type(ftype, gguf_name, ne.size() >= 2 ? ne[0] : 0, c.n_layers);
    w.add_raw_tensor(gguf_name, type, ne, ggml_quantize(type, t.data<float>(), t.numel()));
  };
  add("token_embd.weight", "tok_embeddings");
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", p = "layers." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", p + "attention_norm");
    add(b + "attn_q.weight", p + "attention.wq");
    add(b + "attn_k.weight", p + "attention.wk");
    add(b + "attn_v.weight", p + "attention.wv");
    add(b + "attn_output.weight", p + "attention.wo");
    add(b + "ffn_norm.weight", p + "ffn_norm");
    add(b + "ffn_gate.weight", p + "feed_forward.w1");
    add(b + "ffn_down.weight", p + "feed_forward.w2");
    add(b + "ffn_up.weight", p + "feed_forward.w3");
  }
  add("output_norm.weight", "norm");
  if (!c.tied_embeddings) add("output.weight", "output");
  // Llama 3 frequency scaling: llama.cpp reads per-frequency divisors (convert_hf_to_gguf's rope_freqs.weight).
  std::vector<double> factors = c.rope_freq_factors;
  if (factors.empty() && c.rope_scaling) {
    const std::vector<double> scaled = c.rope_inv_freq();
    for (std::size_t i = 0; i < scaled.size(); ++i)
      factors.push_back(std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim)) /
                        scaled[i]);
  }
  if (!factors.empty()) {
    Tensor f = Tensor::zeros({static_cast<std::int64_t>(factors.size())});
    for (std::size_t i = 0; i < factors.size(); ++i) f.data<float>()[i] = static_cast<float>(factors[i]);
    w.add_tensor("rope_freqs.weight", f);
  }
  w.write(path);
}

}  // namespace pocketlora
