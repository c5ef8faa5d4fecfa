#include "host/model/bnb4bit.h"

#include <deque>
#include <fstream>
#include <memory>
#include <tuple>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/formats/bnb4bit_linear.h"
#include "host/formats/safetensors.h"
#include "host/model/llama_weights.h"
#include "host/util/atomic_file.h"
#include "host/util/json_field.h"

namespace pocketlora {

namespace {

std::filesystem::path dir_of(const std::filesystem::path& p) {
  return std::filesystem::is_directory(p) ? p : p.parent_path();
}

}  // namespace

bool is_bnb4bit_checkpoint(const std::filesystem::path& path) {
  try {
    auto c = SafetensorsCheckpoint::open(path);
    for (auto* t : c.tensors())
      if (t->name.size() > kBnb4bitStateSuffix.size() && t->name.ends_with(kBnb4bitStateSuffix)) return true;
  } catch (const Error&) {
  }
  return false;
}

Bnb4bitSource open_bnb4bit(const std::filesystem::path& path) {
  auto ck = std::make_shared<const SafetensorsCheckpoint>(SafetensorsCheckpoint::open(path));
  const std::string origin = "bnb-4bit checkpoint '" + path.string() + "'";
  Bnb4bitSource m;
  const auto cfg_path = dir_of(path) / "config.json";
  m.config = llama_config_from_hf(cfg_path);
  {
    std::ifstream in(cfg_path);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("quantization_config")) {
      const std::string where = "HF config '" + cfg_path.string() + "', quantization_config";
      if (auto name = json_field::opt_string(j["quantization_config"], "bnb_4bit_compute_dtype", where)) {
        const auto dt = dtype_from_torch_name(*name);
        if (!dt) throw FormatError(where + ": bnb_4bit_compute_dtype '" + *name + "', expected float16, bfloat16 or float32");
        m.compute_dtype = *dt;
      }
    }
  }
  std::map<std::string, bool> consumed;
  for (auto* t : ck->tensors()) {
    if (!t->name.ends_with(kBnb4bitStateSuffix)) continue;
    const std::string w = t->name.substr(0, t->name.size() - kBnb4bitStateSuffix.size());  // "<linear>.weight"
    const Bnb4bitLinear lin = read_bnb4bit_linear(*ck, w, origin);
    for (const auto& name : lin.tensor_names) {
      consumed[name] = true;
      ck->release_pages(name);
    }
    m.linears[w] = {lin.q.shape, lin.q.double_quant, [ck, w, origin, names = lin.tensor_names] {
                      Nf4Quantized q = read_bnb4bit_linear(*ck, w, origin).q;
                      for (const auto& name : names) ck->release_pages(name);
                      return q;
                    }};
  }
  if (m.linears.empty()) throw FormatError(origin + ": no bitsandbytes NF4 quant_state found");
  for (auto* t : ck->tensors())
    if (!consumed.count(t->name)) m.others[t->name] = ck->tensor(t->name);
  m.rows_f32 = [ck](const std::string& name, std::int64_t first, std::int64_t count) {
    return ck->rows_f32(name, first, count);
  };
  return m;
}

Bnb4bitModel load_bnb4bit(const std::filesystem::path& path) {
  Bnb4bitSource src = open_bnb4bit(path);
  Bnb4bitModel m;
  m.config = src.config;
  m.compute_dtype = src.compute_dtype;
  m.qk_layout = src.qk_layout;
  m.others = std::move(src.others);
  for (const auto& [name, l] : src.linears) m.linears[name] = l.read();
  return m;
}

std::size_t write_bnb4bit(const std::filesystem::path& model_in, const std::filesystem::path& out,
                          DType compute_dtype) {
  if (compute_dtype != DType::F16 && compute_dtype != DType::BF16 && compute_dtype != DType::F32)
    throw InvalidArgument(std::string("bnb-4bit compute dtype must be f16, bf16 or f32, got ") + dtype_name(compute_dtype));
  const char* compute_name = bnb4bit_torch_dtype(compute_dtype);
  LlamaWeights w = load_llama_weights(model_in);
  const LlamaConfig& c = w.config;
  // Owned storage for every tensor written (the entries hold spans into it; a deque never moves its elements).
  std::deque<Bnb4bitStateTensor> blobs;
  std::vector<SafetensorsEntry> entries;
  auto add = [&](Bnb4bitStateTensor t) {
    blobs.push_back(std::move(t));
    entries.push_back({blobs.back().name, blobs.back().dtype, blobs.back().shape, blobs.back().bytes});
  };
  auto add_f32 = [&](const std::string& name, const Tensor& t) {
    Tensor f = t.to(DType::F32);
    const auto* b = static_cast<const std::uint8_t*>(f.raw());
    add({name, "F32", f.shape(), {b, b + f.nbytes()}});
  };
  add_f32("model.embed_tokens.weight", w.at("tok_embeddings"));
  add_f32("model.norm.weight", w.at("norm"));
  if (!c.tied_embeddings) add_f32("lm_head.weight", w.at("output"));
  std::size_t count = 0;
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    add_f32(h + "input_layernorm.weight", w.at(p + "attention_norm"));
    add_f32(h + "post_attention_layernorm.weight", w.at(p + "ffn_norm"));
    const std::tuple<const char*, const char*, Tensor> linears[] = {
        {"self_attn.q_proj", "attention.wq",
         permute_rows_interleaved_to_hf(w.at(p + "attention.wq"), c.n_heads, c.head_dim)},
        {"self_attn.k_proj", "attention.wk",
         permute_rows_interleaved_to_hf(w.at(p + "attention.wk"), c.n_kv_heads, c.head_dim)},
        {"self_attn.v_proj", "attention.wv", w.at(p + "attention.wv")},
        {"self_attn.o_proj", "attention.wo", w.at(p + "attention.wo")},
        {"mlp.gate_proj", "feed_forward.w1", w.at(p + "feed_forward.w1")},
        {"mlp.up_proj", "feed_forward.w3", w.at(p + "feed_forward.w3")},
        {"mlp.down_proj", "feed_forward.w2", w.at(p + "feed_forward.w2")}};
    for (auto& [suffix, source, t] : linears) {
      const std::string name = h + suffix + ".weight";
      // quant_state "dtype" is the dtype of the tensor bitsandbytes quantized: the source's (f16/bf16 values are
      // exact in f32, and bitsandbytes computes in f32 either way, so converting first gives the same codes).
      const auto stored = w.stored_dtype.find(p + source);
      const char* torch_dtype = bnb4bit_torch_dtype(stored == w.stored_dtype.end() ? DType::F32 : stored->second);
      Tensor f = t.to(DType::F32);
      Nf4Quantized q;
      try {
        q = quantize_nf4({f.data<float>(), static_cast<std::size_t>(f.numel())}, f.shape(), true, name);
      } catch (const NumericError& e) {  // NaN/Inf weights: name the checkpoint they came from
        throw NumericError("checkpoint '" + model_in.string() + "': " + e.what());
      }
      for (auto& st : bnb4bit_linear_state_dict(name, q, torch_dtype)) add(std::move(st));
      ++count;
    }
  }
  write_safetensors(out, entries, {{"format", "pt"}});
  // config.json next to the weights, with transformers' quantization_config.
  nlohmann::ordered_json cfg;
  const auto src_cfg = dir_of(model_in) / "config.json";
  if (w.source == ModelSource::Safetensors && std::filesystem::exists(src_cfg)) {
    std::ifstream in(src_cfg);
    cfg = nlohmann::ordered_json::parse(in);
  } else {
    cfg["architectures"] = {"LlamaForCausalLM"};
    cfg["model_type"] = "llama";
    cfg["hidden_size"] = c.dim;
    cfg["intermediate_size"] = c.hidden_dim;
    cfg["num_hidden_layers"] = c.n_layers;
    cfg["num_attention_heads"] = c.n_heads;
    cfg["num_key_value_heads"] = c.n_kv_heads;
    cfg["vocab_size"] = c.vocab_size;
    cfg["max_position_embeddings"] = c.max_seq_len;
    cfg["rms_norm_eps"] = c.rms_eps;
    cfg["rope_theta"] = c.rope_theta;
    cfg["hidden_act"] = "silu";
    cfg["tie_word_embeddings"] = c.tied_embeddings;
    if (c.bos_id) cfg["bos_token_id"] = *c.bos_id;
    if (c.eos_id) cfg["eos_token_id"] = *c.eos_id;
  }
  cfg["torch_dtype"] = compute_name;
  cfg["quantization_config"] = {{"quant_method", "bitsandbytes"},
                                {"load_in_4bit", true},
                                {"load_in_8bit", false},
                                {"bnb_4bit_quant_type", "nf4"},
                                {"bnb_4bit_use_double_quant", true},
                                {"bnb_4bit_compute_dtype", compute_name},
                                {"bnb_4bit_quant_storage", "uint8"},
                                {"llm_int8_skip_modules", nullptr},
                                {"llm_int8_threshold", 6.0},
                                {"llm_int8_has_fp16_weight", false},
                                {"llm_int8_enable_fp32_cpu_offload", false}};
  write_file_atomic(out.parent_path().empty() ? std::filesystem::path("config.json") : out.parent_path() / "config.json",
                    cfg.dump(2) + "\n");
  return count;
}

}  // namespace pocketlora
