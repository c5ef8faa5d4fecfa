#include "bench/synthetic_checkpoint.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "host/adapters/merged_gguf.h"
#include "host/formats/ggml_quantize.h"
#include "host/formats/gguf_writer.h"
#include "host/formats/safetensors.h"
#include "host/model/bnb4bit.h"
#include "host/util/atomic_file.h"

namespace pocketlora::bench {
namespace fs = std::filesystem;

namespace {

// Every tensor of the model in LlamaWeights naming with its shape and a seed, in llama2.c's v1 order.
struct Named {
  std::string name;
  Shape shape;
  std::uint64_t seed;
};

std::vector<Named> tensors_of(const LlamaConfig& c) {
  std::vector<Named> out;
  std::uint64_t seed = 1000;
  const auto per_layer = [&](const std::string& suffix, const Shape& s) {
    for (std::int64_t l = 0; l < c.n_layers; ++l) out.push_back({fmt::format("layers.{}.{}", l, suffix), s, seed++});
  };
  const std::int64_t D = c.dim, H = c.hidden_dim, KV = c.kv_dim(), Q = c.n_heads * c.head_dim;
  per_layer("attention_norm", {D});
  per_layer("ffn_norm", {D});
  out.push_back({"norm", {D}, seed++});
  out.push_back({"tok_embeddings", {c.vocab_size, D}, seed++});
  per_layer("attention.wq", {Q, D});
  per_layer("attention.wk", {KV, D});
  per_layer("attention.wv", {KV, D});
  per_layer("attention.wo", {D, Q});
  per_layer("feed_forward.w1", {H, D});
  per_layer("feed_forward.w2", {D, H});
  per_layer("feed_forward.w3", {H, D});
  if (!c.tied_embeddings) out.push_back({"output", {c.vocab_size, D}, seed++});
  return out;
}

Tensor values(const Named& t) {
  if (t.shape.size() == 1) return Tensor::from_vector(std::vector<float>(static_cast<std::size_t>(t.shape[0]), 1.0f), t.shape);
  return random_tensor(t.shape, std::sqrt(3.0f / static_cast<float>(t.shape[1])), t.seed);
}

std::string hf_name(const std::string& n) {
  if (n == "tok_embeddings") return "model.embed_tokens.weight";
  if (n == "norm") return "model.norm.weight";
  if (n == "output") return "lm_head.weight";
  const auto dot = n.find('.', 7);
  const std::string layer = n.substr(7, dot - 7), what = n.substr(dot + 1);
  static const std::vector<std::pair<std::string, std::string>> map = {
      {"attention_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
      {"attention.wq", "self_attn.q_proj"},  {"attention.wk", "self_attn.k_proj"},
      {"attention.wv", "self_attn.v_proj"},  {"attention.wo", "self_attn.o_proj"},
      {"feed_forward.w1", "mlp.gate_proj"},  {"feed_forward.w2", "mlp.down_proj"},
      {"feed_forward.w3", "mlp.up_proj"}};
  for (const auto& [ours, hf] : map)
    if (what == ours) return "model.layers." + layer + "." + hf + ".weight";
  throw std::logic_error("hf_name: " + n);
}

std::string gguf_name(const std::string& n) {
  if (n == "tok_embeddings") return "token_embd.weight";
  if (n == "norm") return "output_norm.weight";
  if (n == "output") return "output.weight";
  const auto dot = n.find('.', 7);
  const std::string layer = n.substr(7, dot - 7), what = n.substr(dot + 1);
  static const std::vector<std::pair<std::string, std::string>> map = {
      {"attention_norm", "attn_norm"}, {"ffn_norm", "ffn_norm"},         {"attention.wq", "attn_q"},
      {"attention.wk", "attn_k"},      {"attention.wv", "attn_v"},       {"attention.wo", "attn_output"},
      {"feed_forward.w1", "ffn_gate"}, {"feed_forward.w2", "ffn_down"},  {"feed_forward.w3", "ffn_up"}};
  for (const auto& [ours, g] : map)
    if (what == ours) return "blk." + layer + "." + g + ".weight";
  throw std::logic_error("gguf_name: " + n);
}

void write_hf(const LlamaConfig& c, DType dtype, const fs::path& dir) {
  fs::create_directories(dir);
  std::deque<Tensor> keep;  // the entries point into these
  std::vector<SafetensorsEntry> entries;
  for (const Named& t : tensors_of(c)) {
    keep.push_back(values(t).to(dtype));
    entries.push_back({hf_name(t.name), safetensors_dtype_name(dtype), t.shape,
                       {static_cast<const std::uint8_t*>(keep.back().raw()), keep.back().nbytes()}});
  }
  write_safetensors(dir / "model.safetensors", entries);
  const nlohmann::json cfg{{"architectures", {"LlamaForCausalLM"}},
                           {"model_type", "llama"},
                           {"hidden_size", c.dim},
                           {"intermediate_size", c.hidden_dim},
                           {"num_hidden_layers", c.n_layers},
                           {"num_attention_heads", c.n_heads},
                           {"num_key_value_heads", c.n_kv_heads},
                           {"head_dim", c.head_dim},
                           {"vocab_size", c.vocab_size},
                           {"max_position_embeddings", c.max_seq_len},
                           {"rms_norm_eps", 1e-5},
                           {"rope_theta", c.rope_theta},
                           {"tie_word_embeddings", c.tied_embeddings},
                           {"torch_dtype", dtype == DType::F16 ? "float16" : "float32"}};
  write_file_atomic(dir / "config.json", cfg.dump(2));
}

void write_gguf(const LlamaConfig& c, GgmlType type, const fs::path& path) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  set_llama_gguf_hparams(w, c);  // the synthetic configs keep LlamaConfig's rms_eps, 1e-5
  for (const Named& t : tensors_of(c)) {
    const Tensor v = values(t);
    if (t.shape.size() == 1) {
      w.add_tensor(gguf_name(t.name), v);
      continue;
    }
    w.add_raw_tensor(gguf_name(t.name), type, {t.shape[1], t.shape[0]},
                     ggml_quantize(type, v.data<float>(), v.numel()));
  }
  w.write(path);
}

void write_llama2c(const LlamaConfig& c, const fs::path& path) {
  AtomicFileWriter out(path);
  char header[256] = {};
  const std::uint32_t magic = 0x616b3432;  // "ak42"
  const std::int32_t version = 1;
  const std::int32_t h[7] = {static_cast<std::int32_t>(c.dim),        static_cast<std::int32_t>(c.hidden_dim),
                             static_cast<std::int32_t>(c.n_layers),   static_cast<std::int32_t>(c.n_heads),
                             static_cast<std::int32_t>(c.n_kv_heads), static_cast<std::int32_t>(c.vocab_size),
                             static_cast<std::int32_t>(c.max_seq_len)};
  std::memcpy(header, &magic, 4);
  std::memcpy(header + 4, &version, 4);
  std::memcpy(header + 8, h, 28);
  header[36] = c.tied_embeddings ? 1 : 0;
  out.write(header, sizeof header);
  for (const Named& t : tensors_of(c)) {
    const Tensor v = values(t);
    out.write(v.raw(), v.nbytes());
  }
  out.commit();
}

}  // namespace

const std::vector<std::string>& synthetic_checkpoint_formats() {
  static const std::vector<std::string> f = {"safetensors-f32", "safetensors-f16", "gguf-q8_0",
                                             "gguf-q4_0",       "bnb4bit",         "llama2c"};
  return f;
}

fs::path write_synthetic_checkpoint(const SyntheticSpec& spec, std::int64_t layers, std::int64_t vocab,
                                    const std::string& format, const fs::path& dir) {
  LlamaConfig c = synthetic_config(spec, layers, vocab);
  const fs::path base = dir / fmt::format("{}-{}l-v{}", spec.name, layers, vocab);
  fs::path path;
  std::function<void()> write;
  if (format == "safetensors-f32" || format == "safetensors-f16") {
    const DType dt = format == "safetensors-f32" ? DType::F32 : DType::F16;
    path = base / format;
    write = [&, dt] { write_hf(c, dt, path); };
  } else if (format == "gguf-q8_0" || format == "gguf-q4_0") {
    path = base / (format + ".gguf");
    write = [&] { write_gguf(c, format == "gguf-q8_0" ? GgmlType::Q8_0 : GgmlType::Q4_0, path); };
  } else if (format == "bnb4bit") {
    path = base / "bnb4bit";
    write = [&] {
      const fs::path f16 = write_synthetic_checkpoint(spec, layers, vocab, "safetensors-f16", dir);
      fs::create_directories(path);
      write_bnb4bit(f16, path / "model.safetensors", DType::F16);
    };
  } else if (format == "llama2c") {
    path = base / "model.bin";
    write = [&] { write_llama2c(c, path); };
  } else {
    throw std::runtime_error("unknown checkpoint format '" + format + "' (safetensors-f32, safetensors-f16, "
                             "gguf-q8_0, gguf-q4_0, bnb4bit, llama2c)");
  }
  const fs::path done = fs::is_directory(path) || format.starts_with("safetensors") || format == "bnb4bit"
                            ? path / "model.safetensors"
                            : path;
  if (fs::exists(done)) return path;
  fs::create_directories(base);
  fmt::print("writing {} ...\n", path.string());
  std::fflush(stdout);
  write();
  return path;
}

}  // namespace pocketlora::bench
