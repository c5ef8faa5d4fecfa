#include "host/adapters/peft_export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "host/adapters/adapter_modules.h"
#include "host/core/error.h"
#include "host/formats/safetensors.h"
#include "host/util/atomic_file.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"

namespace pocketlora {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kKeyPrefix = "base_model.model.model.layers.";

using Module = AdapterModule;
constexpr const auto& kModules = kAdapterModules;

const Module* module_named(const std::string& name) { return adapter_module_named(name); }
const Module* module_hf(const std::string& hf) {
  for (const auto& m : kModules)
    if (hf == m.hf) return &m;
  return nullptr;
}

std::string project_name(std::int64_t layer, const std::string& module, char ab) {
  return adapter_tensor_name(layer, module, ab);
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

std::string module_name(std::int64_t layer, const Module& m) { return adapter_module_name(layer, m.name); }

// Checks that `tensors` (project names) hold exactly A and B of every target in every adapted layer with the
// linear's shapes and the module's rank; returns them by name.
std::map<std::string, const Tensor*> check_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                                   const std::vector<const Module*>& targets,
                                                   const PeftAdapterConfig& c, const LlamaConfig& model,
                                                   const std::string& origin) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [n, t] : tensors)
    if (!by_name.emplace(n, &t).second) throw InvalidArgument(origin + ": tensor '" + n + "' given twice");
  std::set<std::string> expected;
  for (std::int64_t i = 0; i < model.n_layers; ++i) {
    if (!c.adapts_layer(i)) continue;
    for (const Module* m : targets) {
      const auto [out, in] = adapter_linear_shape(model, m->name);
      const std::int64_t r = c.rank_of(module_name(i, *m));
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
  }
  for (const auto& [n, t] : by_name)
    if (!expected.count(n))
      throw InvalidArgument(origin + ": unexpected LoRA tensor '" + n +
                            "' (targets and adapted layers do not include it)");
  return by_name;
}

// PEFT stores q/k lora_B rows in HF's rotate_half order.
Tensor reorder_rows(const Tensor& b, const LlamaConfig& model, const std::string& module, RopeLayout layout,
                    bool to_hf) {
  return to_hf ? linear_rows_to_layout(b, model, module, layout, RopeLayout::RotateHalf)
               : linear_rows_to_layout(b, model, module, RopeLayout::RotateHalf, layout);
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
  for (const auto& [m, r] : c.module_r)
    if (r < 1) throw InvalidArgument(origin + ": rank of '" + m + "': expected >= 1, found " + std::to_string(r));
  for (const auto& [m, alpha] : c.module_alpha)
    if (!(alpha > 0) || !std::isfinite(alpha))
      throw InvalidArgument(origin + ": alpha of '" + m + "': expected a positive finite value, found " +
                            std::to_string(alpha));
  for (std::size_t i = 0; i < c.layers.size(); ++i)
    if (c.layers[i] < 0 || (i > 0 && c.layers[i] <= c.layers[i - 1]))
      throw InvalidArgument(origin + ": adapted layers: expected distinct indices >= 0 in ascending order, found " +
                            std::to_string(c.layers[i]) + " at position " + std::to_string(i));
}

void check_layers(const PeftAdapterConfig& c, const LlamaConfig& model, const std::string& origin) {
  for (std::int64_t l : c.layers)
    if (l >= model.n_layers)
      throw InvalidArgument(origin + ": adapted layer " + std::to_string(l) + " is past the model's " +
                            std::to_string(model.n_layers) + " layers");
}

// Per-module values are keyed by project module name; each must name an adapted module.
void check_module_keys(const PeftAdapterConfig& c, const std::vector<const Module*>& targets,
                       const LlamaConfig& model, const std::string& origin) {
  std::set<std::string> modules;
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    if (c.adapts_layer(i))
      for (const Module* m : targets) modules.insert(module_name(i, *m));
  for (const auto& [k, v] : c.module_r)
    if (!modules.count(k)) throw InvalidArgument(origin + ": rank given for '" + k + "', which is not adapted");
  for (const auto& [k, v] : c.module_alpha)
    if (!modules.count(k)) throw InvalidArgument(origin + ": alpha given for '" + k + "', which is not adapted");
}

// One rank_pattern / alpha_pattern entry. PEFT's get_pattern_key picks, for a module's full name, the first key K
// in file order whose regex (.*\.)?(K)$ matches it (re.match: anchored at both ends). Keys are module names, so the
// syntax taken is name characters, '.' (any character) and '.*' (any run), matched here without backtracking
// (std::regex backtracks, so a hostile key could hang the reader).
struct PatternEntry {
  std::string key;
  nlohmann::ordered_json value;
};

// Does `key` (name characters, '.', '.*') match all of `text`? Dynamic programming over (key position, text
// position): O(|key|·|text|).
bool key_matches(const std::string& key, const std::string& text) {
  // reach[j]: the key consumed so far matches text[0, j).
  std::vector<char> reach(text.size() + 1, 0), next(text.size() + 1, 0);
  reach[0] = 1;
  for (std::size_t i = 0; i < key.size(); ++i) {
    std::fill(next.begin(), next.end(), 0);
    const bool star = key[i] == '.' && i + 1 < key.size() && key[i + 1] == '*';
    for (std::size_t j = 0; j <= text.size(); ++j) {
      if (!reach[j]) continue;
      if (star) {
        for (std::size_t k = j; k <= text.size(); ++k) next[k] = 1;
        break;
      }
      if (j < text.size() && (key[i] == '.' || key[i] == text[j])) next[j + 1] = 1;
    }
    if (star) ++i;
    reach.swap(next);
  }
  return reach[text.size()];
}

std::vector<PatternEntry> read_pattern(const nlohmann::ordered_json& cfg, const char* field, const std::string& origin) {
  std::vector<PatternEntry> out;
  auto it = cfg.find(field);
  if (it == cfg.end() || it->is_null()) return out;
  if (!it->is_object()) throw FormatError(origin + ": field '" + field + "': expected an object, found " + it->dump());
  for (const auto& [key, value] : it->items()) {
    bool simple = !key.empty() && key.size() <= 256;
    for (std::size_t i = 0; i < key.size() && simple; ++i) {
      const char ch = key[i];
      simple = std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' ||
               (ch == '*' && i > 0 && key[i - 1] == '.');
    }
    if (!simple)
      throw FormatError(origin + ": field '" + field + "': key '" + key +
                        "' is not a supported pattern (module names with '.' and '.*'; other regex syntax is not "
                        "supported)");
    out.push_back({key, value});
  }
  return out;
}

const PatternEntry* pattern_for(const std::vector<PatternEntry>& patterns, const std::string& full_name) {
  for (const auto& p : patterns) {
    // (.*\.)?(K): K matches the whole name or the part after one of its dots.
    if (key_matches(p.key, full_name)) return &p;
    for (std::size_t i = 0; i < full_name.size(); ++i)
      if (full_name[i] == '.' && key_matches(p.key, full_name.substr(i + 1))) return &p;
  }
  return nullptr;
}

// A PEFT option this project does not implement must be absent, null or its default; else refused by name.
void refuse_unless_default(const json& cfg, const char* key, const json& default_value, const std::string& origin) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null() || *it == default_value) return;
  if (default_value.is_object() && it->is_object() && it->empty()) return;
  throw FormatError(origin + ": field '" + key + "' = " + it->dump() + " is not supported (expected " +
                    default_value.dump() + ")");
}

// "layers.3.q" -> PEFT's rank_pattern / alpha_pattern key "layers.3.self_attn.q_proj".
std::string pattern_key(const std::string& module) {
  const std::size_t dot = module.rfind('.');
  const Module* m = dot == std::string::npos ? nullptr : module_named(module.substr(dot + 1));
  if (!m) throw InternalError("pattern_key: not a module name: '" + module + "'");
  return module.substr(0, dot + 1) + m->peft_path;
}

}  // namespace

std::int64_t PeftAdapterConfig::rank_of(const std::string& module) const {
  auto it = module_r.find(module);
  return it == module_r.end() ? r : it->second;
}

double PeftAdapterConfig::alpha_of(const std::string& module) const {
  auto it = module_alpha.find(module);
  return it == module_alpha.end() ? lora_alpha : it->second;
}

double PeftAdapterConfig::scale_of(const std::string& module) const {
  const double rank = static_cast<double>(rank_of(module));
  return alpha_of(module) / (use_rslora ? std::sqrt(rank) : rank);
}

bool PeftAdapterConfig::adapts_layer(std::int64_t layer) const {
  return layers.empty() || std::binary_search(layers.begin(), layers.end(), layer);
}

void check_peft_adapter(const PeftAdapter& adapter, const LlamaConfig& model, const std::string& origin) {
  const PeftAdapterConfig& c = adapter.config;
  check_config(c, origin);
  check_layers(c, model, origin);
  const auto targets = canonical_targets(c.targets, origin);
  check_module_keys(c, targets, model, origin);
  check_tensors(adapter.tensors, targets, c, model, origin);
}

void write_peft_adapter(const fs::path& dir, const PeftAdapter& adapter, const LlamaConfig& model,
                        RopeLayout qk_layout) {
  const std::string origin = "PEFT export to '" + dir.string() + "'";
  const PeftAdapterConfig& c = adapter.config;
  check_peft_adapter(adapter, model, origin);
  const auto targets = canonical_targets(c.targets, origin);
  const auto by_name = check_tensors(adapter.tensors, targets, c, model, origin);

  std::vector<std::pair<std::string, Tensor>> out;
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    for (const Module* m : targets) {
      if (!c.adapts_layer(i)) break;
      const std::string key = kKeyPrefix + std::to_string(i) + "." + m->peft_path;
      out.emplace_back(key + ".lora_A.weight", by_name.at(project_name(i, m->name, 'A'))->to(DType::F32));
      out.emplace_back(key + ".lora_B.weight",
                       reorder_rows(*by_name.at(project_name(i, m->name, 'B')), model, m->name, qk_layout, true));
    }
  // Python's safetensors lays same-dtype tensors out by name; do the same so the bytes match its output.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  json modules = json::array();
  for (const Module* m : targets) modules.push_back(m->hf);
  json rank_pattern = json::object(), alpha_pattern = json::object();
  for (const auto& [module, r] : c.module_r) rank_pattern[pattern_key(module)] = r;
  for (const auto& [module, alpha] : c.module_alpha) alpha_pattern[pattern_key(module)] = alpha_json(alpha);
  json cfg = {
      {"alpha_pattern", alpha_pattern},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", c.base_model_name_or_path.empty() ? json(nullptr) : json(c.base_model_name_or_path)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", c.layers.empty() ? json(nullptr) : json(c.layers)},
      {"loftq_config", json::object()},
      {"lora_alpha", alpha_json(c.lora_alpha)},
      {"lora_dropout", c.lora_dropout},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"peft_type", "LORA"},
      {"r", c.r},
      {"rank_pattern", rank_pattern},
      {"revision", nullptr},
      {"target_modules", modules},
      {"task_type", "CAUSAL_LM"},
      {"use_dora", false},
      {"use_rslora", c.use_rslora},
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create adapter directory '" + dir.string() + "': " + ec.message());
  write_safetensors(dir / kPeftWeightsFile, out, {{"format", "pt"}});
  write_file_atomic(dir / kPeftConfigFile, cfg.dump(2));  // nlohmann objects are key-sorted: json.dumps(sort_keys=True)
}

PeftAdapter read_peft_adapter(const fs::path& dir, const LlamaConfig& model, RopeLayout qk_layout) {
  const fs::path cfg_path = dir / kPeftConfigFile;
  const std::string origin = cfg_path.string();
  if (!fs::is_regular_file(cfg_path)) throw IoError("'" + dir.string() + "' is not a PEFT adapter: no " + kPeftConfigFile);
  json cfg;
  nlohmann::ordered_json ordered;  // rank_pattern / alpha_pattern keys are matched in file order
  try {
    const std::string text = read_file_text(cfg_path);
    cfg = json::parse(text);
    ordered = nlohmann::ordered_json::parse(text);
  } catch (const json::parse_error& e) {
    throw FormatError(origin + ": not valid JSON: " + e.what());
  }
  if (!cfg.is_object()) throw FormatError(origin + ": expected a JSON object");
  const std::string type = json_field::string(cfg, "peft_type", origin);
  if (type != "LORA") throw FormatError(origin + ": field 'peft_type': expected \"LORA\", found \"" + type + "\"");
  refuse_unless_default(cfg, "bias", "none", origin);
  refuse_unless_default(cfg, "use_dora", false, origin);
  refuse_unless_default(cfg, "fan_in_fan_out", false, origin);
  refuse_unless_default(cfg, "modules_to_save", nullptr, origin);
  refuse_unless_default(cfg, "layer_replication", nullptr, origin);
  // layers_pattern names the ModuleList holding the layers; a Llama's is "layers".
  if (auto lp = cfg.find("layers_pattern");
      lp != cfg.end() && !lp->is_null() && *lp != "layers" && *lp != json::array({"layers"}))
    throw FormatError(origin + ": field 'layers_pattern' = " + lp->dump() +
                      " is not supported (expected null or \"layers\": a Llama's layers are model.layers)");

  PeftAdapter a;
  PeftAdapterConfig& c = a.config;
  c.r = json_field::integer(cfg, "r", origin);
  c.lora_alpha = json_field::number(cfg, "lora_alpha", origin);
  c.lora_dropout = json_field::opt_number(cfg, "lora_dropout", origin).value_or(0.0);
  c.use_rslora = json_field::opt_bool(cfg, "use_rslora", origin).value_or(false);
  c.base_model_name_or_path = json_field::opt_string(cfg, "base_model_name_or_path", origin).value_or("");
  auto tm = cfg.find("target_modules");
  const bool all_linear = tm != cfg.end() && *tm == "all-linear";  // PEFT: every linear but the output head
  if (tm == cfg.end() || (!tm->is_array() && !all_linear))
    throw FormatError(origin + ": field 'target_modules': expected a list of module names or \"all-linear\"" +
                      (tm != cfg.end() && tm->is_string() ? " (a regex string is not supported)" : ""));
  for (const auto& n : all_linear ? json::array() : *tm) {
    const Module* m = n.is_string() ? module_hf(n.get<std::string>()) : nullptr;
    if (!m)
      throw FormatError(origin + ": field 'target_modules': unsupported module " + n.dump() +
                        " (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    c.targets.push_back(m->name);
  }
  if (all_linear)
    for (const auto& m : kModules) c.targets.push_back(m.name);
  if (auto lt = cfg.find("layers_to_transform"); lt != cfg.end() && !lt->is_null()) {
    if (lt->is_number_integer())
      c.layers.push_back(lt->get<std::int64_t>());
    else if (lt->is_array())
      for (std::size_t i = 0; i < lt->size(); ++i) c.layers.push_back(json_field::int_at(*lt, i, "layers_to_transform", origin));
    else
      throw FormatError(origin + ": field 'layers_to_transform': expected an integer or a list of integers, found " +
                        lt->dump());
    std::sort(c.layers.begin(), c.layers.end());
    c.layers.erase(std::unique(c.layers.begin(), c.layers.end()), c.layers.end());
    for (std::int64_t l : c.layers)
      if (l < 0 || l >= model.n_layers)
        throw FormatError(origin + ": field 'layers_to_transform': layer " + std::to_string(l) +
                          " is not a layer of this model (0.." + std::to_string(model.n_layers - 1) + ")");
  }
  check_config(c, origin);
  const auto targets = canonical_targets(c.targets, origin);
  c.targets.clear();
  for (const Module* m : targets) c.targets.push_back(m->name);
  const auto rank_pattern = read_pattern(ordered, "rank_pattern", origin);
  const auto alpha_pattern = read_pattern(ordered, "alpha_pattern", origin);
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    for (const Module* m : targets) {
      if (!c.adapts_layer(i)) break;
      const std::string full_name = "model.layers." + std::to_string(i) + "." + m->peft_path;
      const std::string module = module_name(i, *m);
      if (const PatternEntry* p = pattern_for(rank_pattern, full_name)) {
        if (!p->value.is_number_integer() || p->value.get<std::int64_t>() < 1)
          throw FormatError(origin + ": field 'rank_pattern': value of '" + p->key +
                            "': expected an integer >= 1, found " + p->value.dump());
        c.module_r[module] = p->value.get<std::int64_t>();
      }
      if (const PatternEntry* p = pattern_for(alpha_pattern, full_name)) {
        if (!p->value.is_number() || !(p->value.get<double>() > 0) || !std::isfinite(p->value.get<double>()))
          throw FormatError(origin + ": field 'alpha_pattern': value of '" + p->key +
                            "': expected a positive number, found " + p->value.dump());
        c.module_alpha[module] = p->value.get<double>();
      }
    }

  const fs::path weights_path = dir / kPeftWeightsFile;
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
      if (rest == mm.peft_path) m = &mm;
    if (!m) throw bad("unsupported module '" + rest + "'");
    if (std::find(targets.begin(), targets.end(), m) == targets.end())
      throw bad("module '" + std::string(m->hf) + "' is not in target_modules");
    if (!c.adapts_layer(layer)) throw bad("layer " + layer_str + " is not in layers_to_transform");
    const std::string name = project_name(layer, m->name, ab);
    if (!seen.insert(name).second) throw bad("duplicates another key for " + name);
    tensors.emplace_back(name, file.tensor(key).to(DType::F32));
  }
  const auto by_name = check_tensors(tensors, targets, c, model, wo);
  for (std::int64_t i = 0; i < model.n_layers; ++i)
    for (const Module* m : targets)
      for (char ab : {'A', 'B'}) {
        if (!c.adapts_layer(i)) break;
        const std::string n = project_name(i, m->name, ab);
        const Tensor& t = *by_name.at(n);
        a.tensors.emplace_back(n, ab == 'B' ? reorder_rows(t, model, m->name, qk_layout, false) : t.clone());
      }
  return a;
}

}  // namespace pocketlora
