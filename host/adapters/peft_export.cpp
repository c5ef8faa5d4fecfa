#include "host/adapters/peft_export.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/model/llama_weights.h"
#include "host/util/atomic_file.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"

namespace pocketlora {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kWeightsFile = "adapter_model.safetensors";
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kKeyPrefix = "base_model.model.model.layers.";

struct Module {
  const char* name;  // project name
  const char* path;  // under model.layers.{i}.
  const char* hf;    // PEFT's target_modules entry
};
constexpr Module kModules[] = {
    {"q", "self_attn.q_proj", "q_proj"}, {"k", "self_attn.k_proj", "k_proj"}, {"v", "self_attn.v_proj", "v_proj"},
    {"o", "self_attn.o_proj", "o_proj"}, {"gate", "mlp.gate_proj", "gate_proj"}, {"up", "mlp.up_proj", "up_proj"},
    {"down", "mlp.down_proj", "down_proj"}};

const Module* module_named(const std::string& name) {
  for (const auto& m : kModules)
    if (name == m.name) return &m;
  return nullptr;
}
const Module* module_hf(const std::string& hf) {
  for (const auto& m : kModules)
    if (hf == m.hf) return &m;
  return nullptr;
}

// {out, in} of the linear.
std::pair<std::int64_t, std::int64_t> linear_shape(const LlamaConfig& c, const std::string& m) {
  const std::int64_t q_dim = c.n_heads * c.head_dim;
  if (m == "q") return {q_dim, c.dim};
  if (m == "k" || m == "v") return {c.kv_dim(), c.dim};
  if (m == "o") return {c.dim, q_dim};
  if (m == "gate" || m == "up") return {c.hidden_dim, c.dim};
  return {c.dim, c.hidden_dim};  // down
}

// Heads whose rows RoPE rotates (q, k); 0 for the other linears.
std::int64_t rotated_heads(const LlamaConfig& c, const std::string& m) {
  return m == "q" ? c.n_heads : m == "k" ? c.n_kv_heads : 0;
}

std::string project_name(std::int64_t layer, const std::string& module, char ab) {
  return "layers." + std::to_string(layer) + "." + module + "." + ab;
}

std::vector<const Module*> canonical_targets(const std::vector<std::string>& names, const std::string& origin) {
  std::set<const Module*> set;
  for (const auto& n : names) {
    const Module* m = module_named(n);
    if (!m) throw InvalidArgument(origin + ": unknown LoRA target '" + n + "' (expected q, k, v, o, gate, up, down)");
    if (!set.insert(m).second) throw InvalidArgument(origin + ": LoRA target '" + n + "' listed twice");
  }
  std::vector<const Module*> out;
  for (const auto& m : kModules)
    if (set.count(&m)) out.push_back(&m);
  return out;
}

// Checks that `tensors` (project names) hold exactly A and B of every target in every layer with the linear's
// shapes; returns them by name.
std::map<std::string, const Tensor*> check_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                                   const std::vector<const Module*>& targets, std::int64_t r,
                                                   const LlamaConfig& model, const std::string& origin) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [n, t] : tensors)
    if (!by_name.emplace(n, &t).second) throw InvalidArgument(origin + ": tensor '" + n + "' given twice");
  std::set<std::string> expected;
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    for (const Module* m : targets) {
      const auto [out, in] = linear_shape(model, m->name);
      for (const auto& [ab, shape] : {std::pair<char, Shape>{'A', {r, in}}, std::pair<char, Shape>{'B', {out, r}}}) {
        const std::string n = project_name(i, m->name, ab);
        expected.insert(n);
        auto it = by_name.find(n);
        if (it == by_name.end())
          throw InvalidArgument(origin + ": missing LoRA tensor '" + n + "' " + shape_str(shape) + " (target '" +
                                m->name + "', layer " + std::to_string(i) + " of " + std::to_string(model.n_layers) + ")");
        if (it->second->shape() != shape)
          throw ShapeError(origin + ": LoRA tensor '" + n + "' is " + shape_str(it->second->shape()) + ", expected " +
                           shape_str(shape) + " (rank " + std::to_string(r) + ")");
      }
    }
  for (const auto& [n, t] : by_name)
    if (!expected.count(n))
      throw InvalidArgument(origin + ": unexpected LoRA tensor '" + n + "' (targets and layers do not include it)");
  return by_name;
}

Tensor reorder_rows(const Tensor& b, const LlamaConfig& model, const std::string& module, RopeLayout layout,
                    bool to_hf) {
  const std::int64_t heads = rotated_heads(model, module);
  if (heads == 0 || layout == RopeLayout::RotateHalf) return b.to(DType::F32);
  return to_hf ? permute_rows_interleaved_to_hf(b, heads, model.head_dim)
               : permute_rows_hf_to_interleaved(b, heads, model.head_dim);
}

json alpha_json(double alpha) {
  // PEFT configs carry an int alpha when the user gave one (the common case); keep it an int when it is one.
  if (alpha == std::floor(alpha) && std::abs(alpha) < 1e15) return static_cast<std::int64_t>(alpha);
  return alpha;
}

void check_config(const PeftAdapterConfig& c, const std::string& origin) {
  if (c.r < 1) throw InvalidArgument(origin + ": LoRA rank r: expected >= 1, found " + std::to_string(c.r));
  if (!(c.lora_alpha > 0) || !std::isfinite(c.lora_alpha))
    throw InvalidArgument(origin + ": lora_alpha: expected a positive finite value, found " + std::to_string(c.lora_alpha));
  if (!(c.lora_dropout >= 0 && c.lora_dropout < 1))
    throw InvalidArgument(origin + ": lora_dropout: expected in [0, 1), found " + std::to_string(c.lora_dropout));
  if (c.targets.empty()) throw InvalidArgument(origin + ": no LoRA targets");
}

// A PEFT option this project does not implement must be absent, null or its default; else refused by name.
void refuse_unless_default(const json& cfg, const char* key, const json& default_value, const std::string& origin) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null() || *it == default_value) return;
  if (default_value.is_object() && it->is_object() && it->empty()) return;
  throw FormatError(origin + ": field '" + key + "' = " + it->dump() + " is not supported (expected " +
                    default_value.dump() + ")");
}

}  // namespace

void write_peft_adapter(const fs::path& dir, const PeftAdapter& adapter, const LlamaConfig& model,
                        RopeLayout qk_layout) {
  const std::string origin = "PEFT export to '" + dir.string() + "'";
  const PeftAdapterConfig& c = adapter.config;
  check_config(c, origin);
  const auto targets = canonical_targets(c.targets, origin);
  const auto by_name = check_tensors(adapter.tensors, targets, c.r, model, origin);

  std::vector<std::pair<std::string, Tensor>> out;
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    for (const Module* m : targets) {
      const std::string key = kKeyPrefix + std::to_string(i) + "." + m->path;
      out.emplace_back(key + ".lora_A.weight", by_name.at(project_name(i, m->name, 'A'))->to(DType::F32));
      out.emplace_back(key + ".lora_B.weight",
                       reorder_rows(*by_name.at(project_name(i, m->name, 'B')), model, m->name, qk_layout, true));
    }
  // Python's safetensors lays same-dtype tensors out by name; do the same so the bytes match its output.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  json modules = json::array();
  for (const Module* m : targets) modules.push_back(m->hf);
  json cfg = {
      {"alpha_pattern", json::object()},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", c.base_model_name_or_path.empty() ? json(nullptr) : json(c.base_model_name_or_path)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"loftq_config", json::object()},
      {"lora_alpha", alpha_json(c.lora_alpha)},
      {"lora_dropout", c.lora_dropout},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"peft_type", "LORA"},
      {"r", c.r},
      {"rank_pattern", json::object()},
      {"revision", nullptr},
      {"target_modules", modules},
      {"task_type", "CAUSAL_LM"},
      {"use_dora", false},
      {"use_rslora", c.use_rslora},
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create adapter directory '" + dir.string() + "': " + ec.message());
  write_safetensors(dir / kWeightsFile, out, {{"format", "pt"}});
  write_file_atomic(dir / kConfigFile, cfg.dump(2));  // nlohmann objects are key-sorted: json.dumps(sort_keys=True)
}

PeftAdapter read_peft_adapter(const fs::path& dir, const LlamaConfig& model, RopeLayout qk_layout) {
  const fs::path cfg_path = dir / kConfigFile;
  const std::string origin = cfg_path.string();
  if (!fs::is_regular_file(cfg_path)) throw IoError("'" + dir.string() + "' is not a PEFT adapter: no " + kConfigFile);
  json cfg;
  try {
    cfg = json::parse(read_file_text(cfg_path));
  } catch (const json::parse_error& e) {
    throw FormatError(origin + ": not valid JSON: " + e.what());
  }
  if (!cfg.is_object()) throw FormatError(origin + ": expected a JSON object");
  const std::string type = json_field::string(cfg, "peft_type", origin);
  if (type != "LORA") throw FormatError(origin + ": field 'peft_type': expected \"LORA\", found \"" + type + "\"");
  refuse_unless_default(cfg, "bias", "none", origin);
  refuse_unless_default(cfg, "use_dora", false, origin);
  refuse_unless_default(cfg, "fan_in_fan_out", false, origin);
  refuse_unless_default(cfg, "rank_pattern", json::object(), origin);
  refuse_unless_default(cfg, "alpha_pattern", json::object(), origin);
  refuse_unless_default(cfg, "layers_to_transform", nullptr, origin);
  refuse_unless_default(cfg, "modules_to_save", nullptr, origin);
  refuse_unless_default(cfg, "layer_replication", nullptr, origin);

  PeftAdapter a;
  PeftAdapterConfig& c = a.config;
  c.r = json_field::integer(cfg, "r", origin);
  c.lora_alpha = json_field::number(cfg, "lora_alpha", origin);
  c.lora_dropout = json_field::opt_number(cfg, "lora_dropout", origin).value_or(0.0);
  c.use_rslora = json_field::opt_bool(cfg, "use_rslora", origin).value_or(false);
  c.base_model_name_or_path = json_field::opt_string(cfg, "base_model_name_or_path", origin).value_or("");
  auto tm = cfg.find("target_modules");
  if (tm == cfg.end() || !tm->is_array())
    throw FormatError(origin + ": field 'target_modules': expected a list of module names" +
                      (tm != cfg.end() && tm->is_string() ? " (a regex string is not supported)" : ""));
  for (const auto& n : *tm) {
    const Module* m = n.is_string() ? module_hf(n.get<std::string>()) : nullptr;
    if (!m)
      throw FormatError(origin + ": field 'target_modules': unsupported module " + n.dump() +
                        " (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    c.targets.push_back(m->name);
  }
  check_config(c, origin);
  const auto targets = canonical_targets(c.targets, origin);
  c.targets.clear();
  for (const Module* m : targets) c.targets.push_back(m->name);

  const fs::path weights_path = dir / kWeightsFile;
  const SafetensorsFile file = SafetensorsFile::open(weights_path);
  const std::string wo = weights_path.string();
  std::vector<std::pair<std::string, Tensor>> tensors;  // project names, HF row order
  std::set<std::string> seen;
  for (const auto& info : file.tensors()) {
    // base_model.model.model.layers.{i}.{path}.lora_{A|B}[.default].weight
    const std::string& key = info.name;
    const auto bad = [&](const std::string& why) { return FormatError(wo + ": tensor '" + key + "': " + why); };
    if (key.rfind(kKeyPrefix, 0) != 0) throw bad("not a LoRA tensor of a Llama decoder layer");
    std::size_t pos = std::string(kKeyPrefix).size();
    std::size_t dot = key.find('.', pos);
    const std::string layer_str = key.substr(pos, dot - pos);
    if (layer_str.empty() || layer_str.size() > 6 || !std::all_of(layer_str.begin(), layer_str.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      throw bad("layer index '" + layer_str + "' is not a number");
    const std::int64_t layer = std::stoll(layer_str);
    if (layer >= model.n_layers)
      throw bad("layer " + layer_str + " is past the model's " + std::to_string(model.n_layers) + " layers");
    std::string rest = key.substr(dot + 1);
    for (const char* suffix : {".default.weight", ".weight"}) {
      const std::string s = suffix;
      if (rest.size() > s.size() && rest.compare(rest.size() - s.size(), s.size(), s) == 0) {
        rest.resize(rest.size() - s.size());
        break;
      }
    }
    char ab = 0;
    if (rest.size() > 7 && rest.compare(rest.size() - 7, 7, ".lora_A") == 0) ab = 'A';
    if (rest.size() > 7 && rest.compare(rest.size() - 7, 7, ".lora_B") == 0) ab = 'B';
    if (!ab) throw bad("expected '.lora_A.weight' or '.lora_B.weight' (optionally with '.default')");
    rest.resize(rest.size() - 7);
    const Module* m = nullptr;
    for (const auto& mm : kModules)
      if (rest == mm.path) m = &mm;
    if (!m) throw bad("unsupported module '" + rest + "'");
    if (std::find(targets.begin(), targets.end(), m) == targets.end())
      throw bad("module '" + std::string(m->hf) + "' is not in target_modules");
    const std::string name = project_name(layer, m->name, ab);
    if (!seen.insert(name).second) throw bad("duplicates another key for " + name);
    tensors.emplace_back(name, file.tensor(key).to(DType::F32));
  }
  const auto by_name = check_tensors(tensors, targets, c.r, model, wo);
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    for (const Module* m : targets)
      for (char ab : {'A', 'B'}) {
        const std::string n = project_name(i, m->name, ab);
        const Tensor& t = *by_name.at(n);
        a.tensors.emplace_back(n, ab == 'B' ? reorder_rows(t, model, m->name, qk_layout, false) : t.clone());
      }
  return a;
}

}  // namespace pocketlora
