#include "host/model/bnb4bit.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "host/model/llama_weights.h"
#include "host/model/safetensors.h"
#include "host/util/atomic_file.h"
#include "host/util/error.h"
#include "shaders/common/nf4_codebook.h"

namespace pocketlora {

namespace {

constexpr const char* kStateKey = ".quant_state.bitsandbytes__nf4";

std::filesystem::path dir_of(const std::filesystem::path& p) {
  return std::filesystem::is_directory(p) ? p : p.parent_path();
}

template <typename T> std::vector<T> copy_as(const SafetensorsFile::Info& i, const char* want, const std::string& origin) {
  if (i.dtype != want)
    throw FormatError(origin + ": tensor '" + i.name + "' is " + i.dtype + ", expected " + want);
  std::vector<T> v(i.nbytes / sizeof(T));
  std::memcpy(v.data(), i.data, v.size() * sizeof(T));
  return v;
}

}  // namespace

bool is_bnb4bit_checkpoint(const std::filesystem::path& path) {
  try {
    auto c = SafetensorsCheckpoint::open(path);
    for (auto* t : c.tensors())
      if (t->name.size() > std::strlen(kStateKey) && t->name.ends_with(kStateKey)) return true;
  } catch (const Error&) {
  }
  return false;
}

Bnb4bitModel load_bnb4bit(const std::filesystem::path& path) {
  auto ck = SafetensorsCheckpoint::open(path);
  const std::string origin = "bnb-4bit checkpoint '" + path.string() + "'";
  Bnb4bitModel m;
  const auto cfg_path = dir_of(path) / "config.json";
  m.config = llama_config_from_hf(cfg_path);
  {
    std::ifstream in(cfg_path);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("quantization_config"))
      m.compute_dtype = j["quantization_config"].value("bnb_4bit_compute_dtype", m.compute_dtype);
  }
  std::map<std::string, bool> consumed;
  for (auto* t : ck.tensors()) {
    if (!t->name.ends_with(kStateKey)) continue;
    const std::string w = t->name.substr(0, t->name.size() - std::strlen(kStateKey));  // "<linear>.weight"
    const std::string who = origin + ", weight '" + w + "'";
    nlohmann::json st;
    try {
      st = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(t->data), t->nbytes));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(who + ": quant_state is not valid JSON: " + e.what());
    }
    if (!st.is_object()) throw FormatError(who + ": quant_state is " + st.type_name() + ", expected a JSON object");
    if (st.value("quant_type", "") != "nf4")
      throw FormatError(who + ": quant_type '" + st.value("quant_type", "") + "' is not supported (only nf4)");
    if (st.value("blocksize", 0) != 64)
      throw FormatError(who + ": blocksize " + std::to_string(st.value("blocksize", 0)) + " is not supported (only 64)");
    if (!st.contains("shape") || !st["shape"].is_array() || st["shape"].size() != 2)
      throw FormatError(who + ": quant_state shape must be [out, in]");
    Nf4Quantized q;
    q.shape = {st["shape"][0].get<std::int64_t>(), st["shape"][1].get<std::int64_t>()};
    const std::int64_t n = shape_numel(q.shape), blocks = (n + 63) / 64;
    q.codes = copy_as<std::uint8_t>(ck.at(w), "U8", origin);
    if (static_cast<std::int64_t>(q.codes.size()) != (n + 1) / 2)
      throw FormatError(who + ": " + std::to_string(q.codes.size()) + " code bytes for shape " + shape_str(q.shape));
    const auto qmap = copy_as<float>(ck.at(w + ".quant_map"), "F32", origin);
    for (int i = 0; i < 16; ++i)
      if (qmap.size() != 16 || qmap[static_cast<std::size_t>(i)] != kNf4Codebook[i])
        throw FormatError(who + ": quant_map is not the NF4 codebook");
    q.double_quant = st.contains("nested_offset");
    if (q.double_quant) {
      if (st.value("nested_blocksize", 0) != 256)
        throw FormatError(who + ": nested_blocksize must be 256");
      q.dq.absmax_q = copy_as<std::uint8_t>(ck.at(w + ".absmax"), "U8", origin);
      q.dq.nested_absmax = copy_as<float>(ck.at(w + ".nested_absmax"), "F32", origin);
      q.dq.offset = st["nested_offset"].get<float>();
      const auto nmap = copy_as<float>(ck.at(w + ".nested_quant_map"), "F32", origin);
      if (nmap.size() != 256 || std::memcmp(nmap.data(), bnb_dynamic_map_signed().data(), 1024) != 0)
        throw FormatError(who + ": nested_quant_map differs from bitsandbytes' signed dynamic map; this reader "
                                "decodes with the standard map only");
      if (static_cast<std::int64_t>(q.dq.absmax_q.size()) != blocks)
        throw FormatError(who + ": absmax has " + std::to_string(q.dq.absmax_q.size()) + " entries, expected " +
                          std::to_string(blocks));
      q.absmax = dequantize_absmax(q.dq, static_cast<std::size_t>(blocks));
      consumed[w + ".nested_absmax"] = consumed[w + ".nested_quant_map"] = true;
    } else {
      q.absmax = copy_as<float>(ck.at(w + ".absmax"), "F32", origin);
      if (static_cast<std::int64_t>(q.absmax.size()) != blocks)
        throw FormatError(who + ": absmax has " + std::to_string(q.absmax.size()) + " entries, expected " +
                          std::to_string(blocks));
    }
    consumed[w] = consumed[w + ".absmax"] = consumed[w + ".quant_map"] = consumed[t->name] = true;
    m.linears[w] = std::move(q);
  }
  if (m.linears.empty()) throw FormatError(origin + ": no bitsandbytes NF4 quant_state found");
  for (auto* t : ck.tensors())
    if (!consumed.count(t->name)) m.others[t->name] = ck.tensor(t->name);
  return m;
}

std::size_t write_bnb4bit(const std::filesystem::path& model_in, const std::filesystem::path& out,
                          const std::string& compute_dtype) {
  if (compute_dtype != "float16" && compute_dtype != "bfloat16" && compute_dtype != "float32")
    throw InvalidArgument("bnb-4bit compute dtype must be float16, bfloat16 or float32, got '" + compute_dtype + "'");
  LlamaWeights w = load_llama_weights(model_in);
  const LlamaConfig& c = w.config;
  // Owned storage for every tensor written (the entries hold spans into it).
  std::vector<std::vector<std::uint8_t>> blobs;
  std::vector<SafetensorsEntry> entries;
  auto add = [&](const std::string& name, const std::string& dtype, Shape shape, const void* data, std::size_t n) {
    blobs.emplace_back(static_cast<const std::uint8_t*>(data), static_cast<const std::uint8_t*>(data) + n);
    entries.push_back({name, dtype, std::move(shape), blobs.back()});
  };
  auto add_f32 = [&](const std::string& name, const Tensor& t) {
    Tensor f = t.to(DType::F32);
    add(name, "F32", f.shape(), f.raw(), f.nbytes());
  };
  blobs.reserve(16 + static_cast<std::size_t>(c.n_layers) * 7 * 6 + 4 * static_cast<std::size_t>(c.n_layers));
  add_f32("model.embed_tokens.weight", w.at("tok_embeddings"));
  add_f32("model.norm.weight", w.at("norm"));
  if (!c.tied_embeddings) add_f32("lm_head.weight", w.at("output"));
  const auto& map = bnb_dynamic_map_signed();
  std::size_t count = 0;
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    add_f32(h + "input_layernorm.weight", w.at(p + "attention_norm"));
    add_f32(h + "post_attention_layernorm.weight", w.at(p + "ffn_norm"));
    const std::pair<const char*, Tensor> linears[] = {
        {"self_attn.q_proj", permute_rows_interleaved_to_hf(w.at(p + "attention.wq"), c.n_heads, c.head_dim)},
        {"self_attn.k_proj", permute_rows_interleaved_to_hf(w.at(p + "attention.wk"), c.n_kv_heads, c.head_dim)},
        {"self_attn.v_proj", w.at(p + "attention.wv")},
        {"self_attn.o_proj", w.at(p + "attention.wo")},
        {"mlp.gate_proj", w.at(p + "feed_forward.w1")},
        {"mlp.up_proj", w.at(p + "feed_forward.w3")},
        {"mlp.down_proj", w.at(p + "feed_forward.w2")}};
    for (auto& [suffix, t] : linears) {
      const std::string name = h + suffix + ".weight";
      Tensor f = t.to(DType::F32);
      Nf4Quantized q = quantize_nf4({f.data<float>(), static_cast<std::size_t>(f.numel())}, f.shape(), true, name);
      const auto n = static_cast<std::int64_t>(q.codes.size());
      add(name, "U8", {n, 1}, q.codes.data(), q.codes.size());
      add(name + ".absmax", "U8", {static_cast<std::int64_t>(q.dq.absmax_q.size())}, q.dq.absmax_q.data(),
          q.dq.absmax_q.size());
      add(name + ".quant_map", "F32", {16}, kNf4Codebook, sizeof(kNf4Codebook));
      add(name + ".nested_absmax", "F32", {static_cast<std::int64_t>(q.dq.nested_absmax.size())},
          q.dq.nested_absmax.data(), q.dq.nested_absmax.size() * 4);
      add(name + ".nested_quant_map", "F32", {256}, map.data(), 1024);
      // json.dumps(non_tensor_dict) with Python's default separators, keys in QuantState.as_dict order.
      nlohmann::ordered_json st;
      st["quant_type"] = "nf4";
      st["blocksize"] = 64;
      st["dtype"] = compute_dtype;
      st["shape"] = {q.shape[0], q.shape[1]};
      st["nested_blocksize"] = 256;
      st["nested_dtype"] = "float32";
      st["nested_offset"] = static_cast<double>(q.dq.offset);
      std::string js = st.dump(-1, ' ', false);
      std::string py;  // nlohmann writes {"a":1,"b":[1,2]}; Python writes {"a": 1, "b": [1, 2]}
      bool in_string = false;
      for (std::size_t i = 0; i < js.size(); ++i) {
        const char ch = js[i];
        py += ch;
        if (ch == '"' && (i == 0 || js[i - 1] != '\\')) in_string = !in_string;
        if (!in_string && (ch == ':' || ch == ',')) py += ' ';
      }
      add(name + kStateKey, "U8", {static_cast<std::int64_t>(py.size())}, py.data(), py.size());
      ++count;
    }
  }
  write_safetensors(out, entries, {{"format", "pt"}});
  // config.json next to the weights, with transformers' quantization_config.
  nlohmann::ordered_json cfg;
  const auto src_cfg = dir_of(model_in) / "config.json";
  if (w.format == "safetensors" && std::filesystem::exists(src_cfg)) {
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
  cfg["torch_dtype"] = compute_dtype;
  cfg["quantization_config"] = {{"quant_method", "bitsandbytes"},
                                {"load_in_4bit", true},
                                {"load_in_8bit", false},
                                {"bnb_4bit_quant_type", "nf4"},
                                {"bnb_4bit_use_double_quant", true},
                                {"bnb_4bit_compute_dtype", compute_dtype},
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
