#include "host/adapters/gguf_lora.h"

#include <algorithm>
#include <map>
#include <set>

#include "host/adapters/adapter_modules.h"
#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/formats/gguf_writer.h"

namespace pocketlora {

namespace {

namespace fs = std::filesystem;

std::string gguf_tensor_name(std::int64_t layer, const AdapterModule& m, char ab) {
  return "blk." + std::to_string(layer) + "." + m.gguf + ".weight.lora_" + static_cast<char>(ab - 'A' + 'a');
}

std::string ne_str(const std::vector<std::int64_t>& ne) {
  std::string s = "[";
  for (std::size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

const Tensor& tensor_named(const PeftAdapter& a, const std::string& name) {
  for (const auto& [n, t] : a.tensors)
    if (n == name) return t;
  throw InternalError("GGUF LoRA export: no tensor '" + name + "' after the adapter was checked");
}

// blk.{i}.{gguf}.weight.lora_{a|b} -> (layer, module, 'A'|'B'); false when the name has another form.
bool parse_tensor_name(const std::string& name, std::int64_t& layer, const AdapterModule*& module, char& ab) {
  if (name.rfind("blk.", 0) != 0) return false;
  std::size_t pos = 4, dot = name.find('.', pos);
  if (dot == std::string::npos || dot == pos || dot - pos > 6) return false;
  const std::string digits = name.substr(pos, dot - pos);
  if (!std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return false;
  layer = std::stoll(digits);
  const std::string rest = name.substr(dot + 1);
  for (const auto& m : kAdapterModules)
    for (char c : {'A', 'B'})
      if (rest == std::string(m.gguf) + ".weight.lora_" + static_cast<char>(c - 'A' + 'a')) {
        module = &m;
        ab = c;
        return true;
      }
  return false;
}

}  // namespace

void write_gguf_lora(const fs::path& path, const PeftAdapter& adapter, const LlamaConfig& model,
                     RopeLayout qk_layout, DType dtype) {
  const std::string origin = "GGUF LoRA export to '" + path.string() + "'";
  if (dtype != DType::F32 && dtype != DType::F16)
    throw InvalidArgument(origin + ": tensor type " + dtype_name(dtype) + " (expected f32 or f16)");
  check_peft_adapter(adapter, model, origin);
  const PeftAdapterConfig& c = adapter.config;

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "adapter");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", static_cast<float>(c.lora_alpha));
  if (!c.base_model_name_or_path.empty()) w.set_string("general.base_model.0.name", c.base_model_name_or_path);
  for (std::int64_t i = 0; i < model.n_layers; ++i) {
    if (!c.adapts_layer(i)) continue;
    for (const auto& m : kAdapterModules) {
      if (std::find(c.targets.begin(), c.targets.end(), m.name) == c.targets.end()) continue;
      const std::string module = adapter_module_name(i, m.name);
      const std::int64_t r = c.rank_of(module);
      Tensor b = linear_rows_to_layout(tensor_named(adapter, adapter_tensor_name(i, m.name, 'B')), model, m.name, qk_layout,
                                RopeLayout::Interleaved);
      // llama.cpp applies lora_alpha / r; fold any other scale into B (f64 product, one f32 rounding).
      const double file_scale = static_cast<double>(static_cast<float>(c.lora_alpha)) / static_cast<double>(r);
      const double scale = c.scale_of(module);
      if (scale != c.lora_alpha / static_cast<double>(r)) {
        float* p = b.data<float>();
        for (std::int64_t k = 0; k < b.numel(); ++k) p[k] = static_cast<float>(p[k] * (scale / file_scale));
      }
      w.add_tensor(gguf_tensor_name(i, m, 'A'), tensor_named(adapter, adapter_tensor_name(i, m.name, 'A')).to(dtype));
      w.add_tensor(gguf_tensor_name(i, m, 'B'), b.to(dtype));
    }
  }
  w.write(path);
}

PeftAdapter read_gguf_lora(const fs::path& path, const LlamaConfig& model, RopeLayout qk_layout) {
  const GgufFile f = GgufFile::open(path);
  const std::string origin = path.string();
  const auto expect_string = [&](const char* key, const char* want) {
    const std::string v = f.get_string(key);
    if (v != want)
      throw FormatError(origin + ": metadata '" + key + "': expected \"" + want + "\", found \"" + v + "\"");
  };
  expect_string("general.type", "adapter");
  expect_string("adapter.type", "lora");
  expect_string("general.architecture", "llama");
  // llama.cpp reads a missing alpha as 0, and alpha 0 as scale 1.
  const double alpha = f.has("adapter.lora.alpha") ? f.get_float("adapter.lora.alpha") : 0.0;

  struct Pair {
    const GgufFile::TensorInfo* a = nullptr;
    const GgufFile::TensorInfo* b = nullptr;
  };
  std::map<std::pair<std::int64_t, int>, Pair> pairs;  // (layer, module index)
  for (const auto& t : f.tensors()) {
    std::int64_t layer = 0;
    const AdapterModule* m = nullptr;
    char ab = 0;
    if (!parse_tensor_name(t.name, layer, m, ab))
      throw FormatError(origin + ": tensor '" + t.name +
                        "': expected blk.{i}.{attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down}.weight."
                        "lora_{a|b} (norm or embedding tensors are not supported)");
    if (layer >= model.n_layers)
      throw FormatError(origin + ": tensor '" + t.name + "': layer " + std::to_string(layer) + " is past the model's " +
                        std::to_string(model.n_layers) + " layers");
    Pair& p = pairs[{layer, static_cast<int>(m - kAdapterModules)}];
    (ab == 'A' ? p.a : p.b) = &t;
  }
  if (pairs.empty()) throw FormatError(origin + ": no LoRA tensors");

  std::set<std::int64_t> layers;
  std::set<int> modules;
  for (const auto& [key, p] : pairs) {
    layers.insert(key.first);
    modules.insert(key.second);
  }
  PeftAdapter out;
  PeftAdapterConfig& c = out.config;
  for (int m : modules) c.targets.push_back(kAdapterModules[m].name);
  if (static_cast<std::int64_t>(layers.size()) != model.n_layers) c.layers.assign(layers.begin(), layers.end());
  bool first = true;
  for (std::int64_t i : layers)
    for (int mi : modules) {
      const AdapterModule& m = kAdapterModules[mi];
      auto it = pairs.find({i, mi});
      const std::string a_name = gguf_tensor_name(i, m, 'A'), b_name = gguf_tensor_name(i, m, 'B');
      if (it == pairs.end() || !it->second.a || !it->second.b)
        throw FormatError(origin + ": missing tensor '" + (it != pairs.end() && it->second.a ? b_name : a_name) +
                          "' (every adapted layer must carry lora_a and lora_b of the same modules)");
      const auto& ta = *it->second.a;
      const auto& tb = *it->second.b;
      const auto [out_dim, in_dim] = adapter_linear_shape(model, m.name);
      const std::int64_t r = ta.ne.size() == 2 ? ta.ne[1] : 0;
      // llama_adapter_lora_init's checks: a ne[0] = base ne[0] (in), b ne[1] = base ne[1] (out), a ne[1] = b ne[0].
      if (ta.ne.size() != 2 || ta.ne[0] != in_dim || r < 1)
        throw ShapeError(origin + ": tensor '" + a_name + "' has ne " + ne_str(ta.ne) + ", expected [" +
                         std::to_string(in_dim) + ", r]");
      if (tb.ne != std::vector<std::int64_t>{r, out_dim})
        throw ShapeError(origin + ": tensor '" + b_name + "' has ne " + ne_str(tb.ne) + ", expected " +
                         ne_str({r, out_dim}) + " (r " + std::to_string(r) + " from lora_a)");
      const std::string module = adapter_module_name(i, m.name);
      if (first) {
        c.r = r;
        c.lora_alpha = alpha == 0 ? static_cast<double>(r) : alpha;
        first = false;
      } else if (r != c.r) {
        c.module_r[module] = r;
        if (alpha == 0) c.module_alpha[module] = static_cast<double>(r);
      }
      out.tensors.emplace_back(adapter_tensor_name(i, m.name, 'A'), f.load_f32(a_name));
      out.tensors.emplace_back(adapter_tensor_name(i, m.name, 'B'),
                               linear_rows_to_layout(f.load_f32(b_name), model, m.name, RopeLayout::Interleaved, qk_layout));
    }
  check_peft_adapter(out, model, origin);
  return out;
}

}  // namespace pocketlora
