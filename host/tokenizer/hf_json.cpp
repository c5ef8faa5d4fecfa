// Hugging Face tokenizer.json reader for byte-level BPE. Only the configuration Llama 3 uses is accepted
// (no normalizer, the Llama 3 split regex + ByteLevel without prefix space, BPE without byte fallback); any
// other pre-tokenizer or model would tokenize differently, so it is refused with the field named.
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/tokenizer/bpe.h"
#include "host/util/json_field.h"
#include "host/util/mapped_file.h"

namespace pocketlora {
namespace {

using nlohmann::json;

json parse_file(const std::filesystem::path& path) {
  MappedFile f(path);
  try {
    return json::parse(f.data(), f.data() + f.size());
  } catch (const json::parse_error& e) {
    throw FormatError(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
}

// The vocabulary (128k entries) and merges (280k) are moved out while parsing instead of being kept in the
// DOM (std::map nodes): this roughly halves load time. Everything else stays in the DOM.
struct BigFields {
  std::vector<std::pair<std::string, json>> vocab;
  std::vector<json> merges;
};

json parse_tokenizer_json(const std::filesystem::path& path, BigFields& big) {
  MappedFile f(path);
  std::string top, sub, key;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    using E = json::parse_event_t;
    if (ev == E::key && depth == 1) {
      top = parsed.get<std::string>();
      sub.clear();
    } else if (ev == E::key && depth == 2 && top == "model") {
      sub = parsed.get<std::string>();
    } else if (depth == 3 && top == "model") {
      if (sub == "vocab" && ev == E::key) {
        key = std::move(parsed.get_ref<std::string&>());
      } else if (sub == "vocab" && ev == E::value) {
        big.vocab.emplace_back(std::move(key), std::move(parsed));
        return false;
      } else if (sub == "merges" && (ev == E::value || ev == E::array_end)) {
        big.merges.push_back(std::move(parsed));
        return false;
      }
    }
    return true;
  };
  try {
    return json::parse(f.data(), f.data() + f.size(), cb);
  } catch (const json::parse_error& e) {
    throw FormatError(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
}

[[noreturn]] void bad(const std::filesystem::path& p, std::string_view field, std::string_view what) {
  throw FormatError(fmt::format("{}: {}: {}", p.string(), field, what));
}

const json& need(const std::filesystem::path& p, const json& obj, const char* key, std::string_view field,
                 json::value_t type) {
  if (!obj.is_object()) bad(p, field, "parent is not an object");
  auto it = obj.find(key);
  if (it == obj.end()) bad(p, field, "missing");
  if (it->type() != type && !(type == json::value_t::number_unsigned && it->is_number_integer()))
    bad(p, field, fmt::format("is {} (expected {})", it->type_name(), json(type).type_name()));
  return *it;
}

// bos_token / eos_token in tokenizer_config.json are a string or {"content": string}.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

void check_pre_tokenizer(const std::filesystem::path& p, const json& j) {
  auto pre = j.find("pre_tokenizer");
  if (pre == j.end() || !pre->is_object()) bad(p, "pre_tokenizer", "missing");
  const json* split = nullptr;
  const json* bytelevel = nullptr;
  const std::string where = p.string() + ": pre_tokenizer";
  if (json_field::opt_string(*pre, "type", where).value_or("") == "Sequence") {
    const json& list = need(p, *pre, "pretokenizers", "pre_tokenizer.pretokenizers", json::value_t::array);
    for (const json& e : list) {
      const std::string t = e.is_object() ? json_field::opt_string(e, "type", where + ".pretokenizers[]").value_or("") : "";
      if (t == "Split" && !split) split = &e;
      else if (t == "ByteLevel" && !bytelevel) bytelevel = &e;
      else bad(p, "pre_tokenizer.pretokenizers", fmt::format("unsupported entry '{}'", t));
    }
  }
  if (!split || !bytelevel)
    bad(p, "pre_tokenizer", "only the Llama 3 form Sequence[Split(regex), ByteLevel] is supported");
  const json* pattern = nullptr;
  if (auto it = split->find("pattern"); it != split->end() && it->is_object() && it->contains("Regex")) pattern = &(*it)["Regex"];
  if (!pattern || !pattern->is_string() || pattern->get<std::string>() != kLlama3Pattern)
    bad(p, "pre_tokenizer.pretokenizers[Split].pattern.Regex", "not the Llama 3 pattern (the only one implemented)");
  const std::string in_split = where + ".pretokenizers[Split]";
  if (json_field::opt_string(*split, "behavior", in_split).value_or("") != "Isolated" ||
      json_field::opt_bool(*split, "invert", in_split).value_or(false))
    bad(p, "pre_tokenizer.pretokenizers[Split].behavior", "only Isolated, not inverted, is supported");
  const std::string in_bytelevel = where + ".pretokenizers[ByteLevel]";
  if (json_field::opt_bool(*bytelevel, "add_prefix_space", in_bytelevel).value_or(false)) bad(p, "pre_tokenizer.pretokenizers[ByteLevel].add_prefix_space", "true is not supported");
  if (json_field::opt_bool(*bytelevel, "use_regex", in_bytelevel).value_or(false)) bad(p, "pre_tokenizer.pretokenizers[ByteLevel].use_regex", "true (GPT-2 regex) is not supported");
}

}  // namespace

// The fields are read with nlohmann's value()/get(), which throw type_error on a field of the wrong type
// ("type": 1); read_hf_tokenizer_json turns those into FormatError naming the file.
static ByteBpeVocab read_tokenizer_json_fields(const std::filesystem::path& path);

ByteBpeVocab read_hf_tokenizer_json(const std::filesystem::path& path) {
  try {
    return read_tokenizer_json_fields(path);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}: unexpected field type: {}", path.string(), e.what()));
  }
}

static ByteBpeVocab read_tokenizer_json_fields(const std::filesystem::path& path) {
  BigFields big;
  const json j = parse_tokenizer_json(path, big);
  if (!j.is_object()) bad(path, "(top level)", "not a JSON object");
  ByteBpeVocab v;
  v.source = path.string();
  if (auto it = j.find("normalizer"); it != j.end() && !it->is_null()) bad(path, "normalizer", "must be null (normalizers are not supported)");
  check_pre_tokenizer(path, j);
  const json& model = need(path, j, "model", "model", json::value_t::object);
  if (json_field::opt_string(model, "type", path.string() + ": model").value_or("") != "BPE") bad(path, "model.type", "only BPE is supported");
  if (auto it = model.find("byte_fallback"); it != model.end() && it->is_boolean() && it->get<bool>())
    bad(path, "model.byte_fallback", "true is not supported for byte-level BPE");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (auto it = model.find(k); it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      bad(path, fmt::format("model.{}", k), "not supported");
  if (auto it = model.find("ignore_merges"); it != model.end() && it->is_boolean()) v.ignore_merges = it->get<bool>();

  need(path, model, "vocab", "model.vocab", json::value_t::object);
  const auto& vocab = big.vocab;
  const json& added = need(path, j, "added_tokens", "added_tokens", json::value_t::array);
  const std::size_t limit = vocab.size() + added.size();  // ids beyond this would leave holes
  // `field` is only formatted on error: the vocabulary has 128k entries.
  auto place = [&](std::int64_t id, std::string s, const auto& field) {
    if (id < 0 || static_cast<std::size_t>(id) >= limit)
      bad(path, field(), fmt::format("id {} outside 0..{}", id, limit - 1));
    const auto i = static_cast<std::size_t>(id);
    if (i >= v.pieces.size()) {
      v.pieces.resize(i + 1);
      v.added.resize(i + 1, false);
      v.special.resize(i + 1, false);
    }
    return std::pair{i, std::move(s)};
  };
  std::vector<bool> seen;
  v.pieces.reserve(limit);
  for (const auto& [k, id] : vocab) {
    if (!id.is_number_integer()) bad(path, fmt::format("model.vocab[\"{}\"]", k), "id is not an integer");
    const std::string& key = k;  // clang before 16 cannot capture a structured binding in a lambda
    auto [i, s] = place(id.get<std::int64_t>(), k, [&] { return fmt::format("model.vocab[\"{}\"]", key); });
    seen.resize(v.pieces.size(), false);
    if (seen[i]) bad(path, fmt::format("model.vocab[\"{}\"]", k), fmt::format("id {} used twice", i));
    seen[i] = true;
    v.pieces[i] = std::move(s);
  }
  for (std::size_t k = 0; k < added.size(); ++k) {
    const std::string field = fmt::format("added_tokens[{}]", k);
    const json& a = added[k];
    const json& id = need(path, a, "id", field + ".id", json::value_t::number_unsigned);
    const json& content = need(path, a, "content", field + ".content", json::value_t::string);
    auto [i, s] = place(id.get<std::int64_t>(), content.get<std::string>(), [&] { return field + ".id"; });
    seen.resize(v.pieces.size(), false);
    if (seen[i] && v.pieces[i] != s) bad(path, field, fmt::format("id {} is already '{}'", i, v.pieces[i]));
    seen[i] = true;
    v.pieces[i] = std::move(s);
    v.added[i] = true;
    v.special[i] = json_field::opt_bool(a, "special", path.string() + ": " + field).value_or(false);
  }
  for (std::size_t i = 0; i < v.pieces.size(); ++i)
    if (!seen[i]) bad(path, "model.vocab", fmt::format("no token has id {} (ids must be dense)", i));

  need(path, model, "merges", "model.merges", json::value_t::array);
  const auto& merges = big.merges;
  v.merges.reserve(merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    // Older files write "a b", newer ones ["a", "b"].
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const std::size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        bad(path, fmt::format("model.merges[{}]", r), fmt::format("'{}' is not two space-separated symbols", s));
      v.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      v.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      bad(path, fmt::format("model.merges[{}]", r), "expected \"a b\" or [\"a\", \"b\"]");
    }
  }

  // BOS/EOS: tokenizer_config.json next to the file, when present.
  const auto cfg_path = path.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    const json cfg = parse_file(cfg_path);
    auto resolve = [&](const char* key) -> std::optional<std::int32_t> {
      auto name = cfg.is_object() ? config_token(cfg, key) : std::nullopt;
      if (!name) return std::nullopt;
      for (std::size_t i = 0; i < v.pieces.size(); ++i)
        if (v.pieces[i] == *name) return static_cast<std::int32_t>(i);
      bad(cfg_path, key, fmt::format("'{}' is not a token of {}", *name, path.string()));
    };
    v.bos = resolve("bos_token");
    v.eos = resolve("eos_token");
  }
  return v;
}

}  // namespace pocketlora
