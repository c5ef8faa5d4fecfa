// Structure-aware corruption of the real files in ../shared/data: headers are parsed, edited SEMANTICALLY
// (shapes 0 / -1 / 2^31 / 2^32 / 2^61+32 / 2^62 / 2^63-1 and products that wrap, every dtype, offsets that
// run backwards, past EOF, overlap or are unaligned, counts and lengths that are huge or off by one, JSON fields
// of the wrong type, deep nesting) and re-serialised, then run through the entry points the CLI uses: inspect
// (open + list + config) and quantize (load -> convert to f32 -> NF4). Every case must end in a clean load or
// a pocketlora error naming the file (file_corpus.h). Deterministic: the edits are enumerated, and where a
// subset is sampled the generator is seeded. Prints the case count and outcomes per format.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "host/core/nf4_quantize.h"
#include "host/data/dataset.h"
#include "host/formats/gguf.h"
#include "host/formats/safetensors.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama_config.h"
#include "host/model/llama_weights.h"
#include "host/tokenizer/tokenizer.h"
#include "host/util/splitmix64.h"
#include "model/file_corpus.h"

using namespace pocketlora;
using namespace pocketlora::test;
using ojson = nlohmann::ordered_json;

namespace {

constexpr std::uint64_t k2_31 = 1ull << 31, k2_32 = 1ull << 32, k2_33 = 1ull << 33, k2_61 = 1ull << 61,
                        k2_62 = 1ull << 62, k2_63 = 1ull << 63;
constexpr std::uint64_t kI64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// Dimension values every shape field is tried with (as JSON: negative ones stay signed).
std::vector<ojson> hostile_dims() {
  return {0, -1, k2_31, k2_32, k2_61 + 32, k2_62, kI64Max, kU64Max, std::numeric_limits<std::int64_t>::min()};
}

// JSON values of every other type, for "field of the wrong type" edits.
std::vector<ojson> wrong_types() { return {"64", 1.5, true, nullptr, ojson::array(), ojson::object()}; }

// resize + memcpy: GCC 12 misreports vector::insert at the end of a small vector as an overflow (-Warray-bounds).
template <typename It> void append(std::vector<char>& out, It first, It last) {
  const auto n = static_cast<std::size_t>(std::distance(first, last));
  if (n == 0) return;
  const std::size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, &*first, n);
}

std::string describe(const ojson& v) { return v.dump(); }

// Quantize through the library exactly as `pocketlora quantize` does, then read the result back.
void quantize_like_cli(const std::filesystem::path& model, const std::filesystem::path& out_dir) {
  std::filesystem::create_directories(out_dir);
  write_bnb4bit(model, out_dir / "model.safetensors");
}

// ---------------------------------------------------------------- safetensors -----------------------------------

// A JSON array nested 5000 deep, as text: building and dumping such a document through nlohmann::json recurses
// once per level in the test itself (copy, dump), which overflows the stack under ASan; the library's parser and
// destructor are iterative, and that is what the case exercises.
std::string deep_json_text() { return std::string(5000, '[') + std::string(5000, ']'); }

// A safetensors file as header entries (in data order) + their bytes; serialised with data_offsets recomputed
// from the bytes unless an entry carries its own.
struct SafetensorsImage {
  ojson metadata;
  std::vector<std::pair<std::string, ojson>> entries;
  std::vector<std::vector<char>> blobs;

  static SafetensorsImage parse(const std::vector<char>& file) {
    std::uint64_t hlen;
    std::memcpy(&hlen, file.data(), 8);
    const ojson h = ojson::parse(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(hlen));
    std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> order;
    SafetensorsImage img;
    for (auto it = h.begin(); it != h.end(); ++it) {
      if (it.key() == "__metadata__") {
        img.metadata = it.value();
        continue;
      }
      order.emplace_back(it.value()["data_offsets"][0].get<std::uint64_t>(),
                         it.value()["data_offsets"][1].get<std::uint64_t>(), it.key());
    }
    std::sort(order.begin(), order.end());
    const char* data = file.data() + 8 + hlen;
    for (auto& [b, e, name] : order) {
      ojson entry = h[name];
      entry.erase("data_offsets");
      img.entries.emplace_back(name, entry);
      img.blobs.emplace_back(data + b, data + e);
    }
    return img;
  }

  std::size_t index(const std::string& name) const {
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (entries[i].first == name) return i;
    throw std::logic_error("no tensor " + name);
  }

  std::vector<char> serialise(std::optional<std::uint64_t> hlen_override = std::nullopt,
                              const std::string* whole = nullptr) const {
    ojson h = ojson::object();
    if (!metadata.is_null()) h["__metadata__"] = metadata;
    std::uint64_t off = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      ojson e = entries[i].second;
      if (e.is_object() && !e.contains("data_offsets")) e["data_offsets"] = {off, off + blobs[i].size()};
      h[entries[i].first] = e;
      off += blobs[i].size();
    }
    std::string text = whole ? *whole : h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    const std::uint64_t hlen = hlen_override.value_or(text.size());
    std::vector<char> out(8);
    std::memcpy(out.data(), &hlen, 8);
    append(out, text.begin(), text.end());
    for (auto& b : blobs) append(out, b.begin(), b.end());
    return out;
  }
};

// Every safetensors-side edit: shapes, dtypes, offsets, entry types, header length, metadata, top level.
std::vector<std::pair<std::string, std::vector<char>>> safetensors_mutants(const SafetensorsImage& good,
                                                                         const std::vector<std::string>& targets) {
  std::vector<std::pair<std::string, std::vector<char>>> out;
  auto add = [&](const std::string& what, const SafetensorsImage& img) { out.emplace_back(what, img.serialise()); };
  const std::vector<std::string> dtypes = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "U16",
                                           "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2", "F128", "Q4_0", "f32", ""};
  for (const auto& t : targets) {
    const std::size_t i = good.index(t);
    const ojson orig_shape = good.entries[i].second["shape"];
    // Shapes: one hostile dimension, in each position, with the bytes kept and with the bytes removed (the
    // zero-length range is what a wrapped numel * element_size lands on).
    for (const auto& d : hostile_dims()) {
      for (std::size_t pos = 0; pos < orig_shape.size(); ++pos)
        for (bool drop : {false, true}) {
          SafetensorsImage m = good;
          m.entries[i].second["shape"][pos] = d;  // pos is a size_t
          if (drop) m.blobs[i].clear();
          add(t + " shape[" + std::to_string(pos) + "]=" + describe(d) + (drop ? " no bytes" : ""), m);
        }
      for (const std::string dt : {"F64", "F32", "U8"}) {  // 1-D with each element size: 2^61+32 * 8 wraps, ...
        SafetensorsImage m = good;
        m.entries[i].second = {{"dtype", dt}, {"shape", ojson::array({d})}};
        m.blobs[i].clear();
        add(t + " " + dt + " [" + describe(d) + "] no bytes", m);
      }
    }
    // Products that wrap: every pair fits in int64 alone.
    for (const ojson& shape : {ojson{k2_32, k2_32}, ojson{k2_31, k2_33}, ojson{k2_62, 4}, ojson{k2_61, 8},
                               ojson{k2_32, k2_32, 0}, ojson{0, kU64Max}, ojson::array(),
                               ojson{1, 1, 1, 1, 1, 1, 1, 1, 1}, ojson{"64"}, ojson{1.5}, ojson{nullptr}})
      for (bool drop : {false, true}) {
        SafetensorsImage m = good;
        m.entries[i].second["shape"] = shape;
        if (drop) m.blobs[i].clear();
        add(t + " shape=" + shape.dump() + (drop ? " no bytes" : ""), m);
      }
    // Dtypes: as is (byte count mismatches) and with the shape made 1-D to fit the bytes (passes the header
    // check and reaches conversion).
    for (const auto& dt : dtypes) {
      SafetensorsImage m = good;
      m.entries[i].second["dtype"] = dt;
      add(t + " dtype=" + dt, m);
      const std::size_t es = safetensors_dtype_size(dt);
      if (es != 0 && good.blobs[i].size() % es == 0) {
        m.entries[i].second["shape"] = {good.blobs[i].size() / es};
        add(t + " dtype=" + dt + " 1-D fitting shape", m);
      }
    }
    for (const auto& v : wrong_types()) {
      SafetensorsImage m = good;
      m.entries[i].second["dtype"] = v;
      add(t + " dtype=" + describe(v), m);
      m = good;
      m.entries[i].second["shape"] = v;
      add(t + " shape=" + describe(v), m);
      m = good;
      m.entries[i].second = v;
      add(t + " entry=" + describe(v), m);
      m = good;
      m.entries[i].second["data_offsets"] = v;
      add(t + " data_offsets=" + describe(v), m);
    }
    // Offsets, relative to where the tensor really is.
    std::uint64_t b = 0, total = 0;
    for (std::size_t k = 0; k < good.blobs.size(); ++k) {
      if (k < i) b += good.blobs[k].size();
      total += good.blobs[k].size();
    }
    const std::uint64_t e = b + good.blobs[i].size();
    for (const ojson& offs : {ojson{e, b}, ojson{b, total + 1}, ojson{total + 8, total + 8}, ojson{b, kU64Max},
                              ojson{kU64Max - 3, kU64Max}, ojson{b + 1, e + 1}, ojson{b - std::min<std::uint64_t>(b, 4), e},
                              ojson{b, e - 4}, ojson{-1, e}, ojson{b, e, e}, ojson{b}, ojson{k2_62, k2_62 + (e - b)}})
      for (bool fix_shape : {false, true}) {
        SafetensorsImage m = good;
        m.entries[i].second["data_offsets"] = offs;
        // Also with a shape matching the claimed range, so only the range itself is wrong.
        if (fix_shape && offs.size() == 2 && offs[0].is_number_unsigned() && offs[1].is_number_unsigned() &&
            offs[1].get<std::uint64_t>() >= offs[0].get<std::uint64_t>())
          m.entries[i].second["shape"] = {(offs[1].get<std::uint64_t>() - offs[0].get<std::uint64_t>()) / 4};
        else if (fix_shape)
          continue;
        add(t + " data_offsets=" + offs.dump() + (fix_shape ? " shape to match" : ""), m);
      }
  }
  // Header length field.
  const std::vector<char> base = good.serialise();
  std::uint64_t hlen;
  std::memcpy(&hlen, base.data(), 8);
  for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{1}, hlen - 1, hlen + 1, base.size() - 8, base.size(),
                          k2_63, kU64Max, kU64Max - 7})
    out.emplace_back("header length " + std::to_string(v), good.serialise(v));
  // Metadata and top level.
  for (const ojson& md : {ojson::array(), ojson(5), ojson{{"format", 5}}, ojson{{"format", ojson::object()}}}) {
    SafetensorsImage m = good;
    m.metadata = md;
    add("__metadata__=" + md.dump(), m);
  }
  for (const std::string& whole : {std::string("[]"), std::string("0"), std::string("\"x\""),
                                   "{\"x\": " + deep_json_text() + "}", std::string("{}")})
    out.emplace_back("top level " + whole.substr(0, 40), good.serialise(std::nullopt, &whole));
  return out;
}

// config.json: every field with wrong types, hostile integers, removed.
std::vector<std::pair<std::string, std::string>> config_mutants(const ojson& good) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<ojson> values = wrong_types();
  for (const ojson& v : {ojson(0), ojson(-1), ojson(k2_31), ojson(k2_62), ojson(kI64Max), ojson(kU64Max),
                         ojson(std::numeric_limits<std::int64_t>::min()), ojson(1e300)})
    values.push_back(v);
  std::vector<std::string> keys;
  for (auto it = good.begin(); it != good.end(); ++it) keys.push_back(it.key());
  for (const char* k : {"head_dim", "rope_scaling"}) keys.emplace_back(k);
  for (const auto& k : keys) {
    for (const auto& v : values) {
      ojson m = good;
      m[k] = v;
      out.emplace_back("config." + k + "=" + v.dump(), m.dump());
    }
    ojson m = good;
    m.erase(k);
    out.emplace_back("config." + k + " removed", m.dump());
  }
  for (const ojson& rs : {ojson{{"rope_type", 3}}, ojson{{"rope_type", "llama3"}, {"factor", "8"}},
                          ojson{{"type", "llama3"}, {"original_max_position_embeddings", ojson::array()}}}) {
    ojson m = good;
    m["rope_scaling"] = rs;
    out.emplace_back("config.rope_scaling=" + rs.dump(), m.dump());
  }
  out.emplace_back("config top level array", "[]");
  out.emplace_back("config invalid JSON", "{\"hidden_size\": ");
  return out;
}

// ---------------------------------------------------------------- GGUF ------------------------------------------

// A serialised GGUF with the position of every number that sizes something, so edits hit fields, not bytes.
struct GgufLayout {
  std::vector<char> bytes;
  struct Field {
    std::size_t at, width;
    std::string label;  // "n_tensors", "key length", "array length", "dim", "tensor type", "offset", ...
    std::string kind;
  };
  std::vector<Field> fields;
};

class GgufSerialiser {
 public:
  explicit GgufSerialiser(GgufLayout& l) : l_(l) {}
  template <typename T> void put(T v, const std::string& kind = "", const std::string& label = "") {
    if (!kind.empty()) l_.fields.push_back({l_.bytes.size(), sizeof(T), label, kind});
    const char* p = reinterpret_cast<const char*>(&v);
    append(l_.bytes, p, p + sizeof(T));
  }
  void string(const std::string& s, const std::string& kind, const std::string& label) {
    put<std::uint64_t>(s.size(), kind, label);
    append(l_.bytes, s.begin(), s.end());
  }
  void value(const GgufValue& v, const std::string& key) {
    switch (v.type) {
      case GgufValueType::U8: put<std::uint8_t>(static_cast<std::uint8_t>(std::get<std::uint64_t>(v.v))); break;
      case GgufValueType::I8: put<std::int8_t>(static_cast<std::int8_t>(std::get<std::int64_t>(v.v))); break;
      case GgufValueType::U16: put<std::uint16_t>(static_cast<std::uint16_t>(std::get<std::uint64_t>(v.v))); break;
      case GgufValueType::I16: put<std::int16_t>(static_cast<std::int16_t>(std::get<std::int64_t>(v.v))); break;
      case GgufValueType::U32: put<std::uint32_t>(static_cast<std::uint32_t>(std::get<std::uint64_t>(v.v)), "uint value", key); break;
      case GgufValueType::I32: put<std::int32_t>(static_cast<std::int32_t>(std::get<std::int64_t>(v.v)), "int value", key); break;
      case GgufValueType::U64: put<std::uint64_t>(std::get<std::uint64_t>(v.v), "uint value", key); break;
      case GgufValueType::I64: put<std::int64_t>(std::get<std::int64_t>(v.v)); break;
      case GgufValueType::F32: put<float>(static_cast<float>(std::get<double>(v.v))); break;
      case GgufValueType::F64: put<double>(std::get<double>(v.v)); break;
      case GgufValueType::Bool: put<std::uint8_t>(std::get<bool>(v.v) ? 1 : 0, "bool", key); break;
      case GgufValueType::String: string(std::get<std::string>(v.v), "string length", key); break;
      case GgufValueType::Array: {
        const auto& items = std::get<std::vector<GgufValue>>(v.v);
        put<std::uint32_t>(static_cast<std::uint32_t>(v.elem_type), "array type", key);
        put<std::uint64_t>(items.size(), "array length", key);
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i == 3) {  // record the fields of the first elements only: arrays hold thousands
            GgufLayout scratch;
            GgufSerialiser rest(scratch);
            for (; i < items.size(); ++i) rest.value(items[i], key);
            append(l_.bytes, scratch.bytes.begin(), scratch.bytes.end());
            break;
          }
          value(items[i], key);
        }
        break;
      }
    }
  }

 private:
  GgufLayout& l_;
};

// Header fields of a parsed GGUF (with `kv`), in file order, padded to the file's alignment.
void serialise_gguf_header(const GgufFile& g, const std::vector<std::pair<std::string, GgufValue>>& kv, GgufLayout& l) {
  GgufSerialiser s(l);
  s.put<std::uint32_t>(0x46554747u);
  s.put<std::uint32_t>(g.version(), "version", "version");
  s.put<std::uint64_t>(g.tensors().size(), "count", "n_tensors");
  s.put<std::uint64_t>(kv.size(), "count", "n_kv");
  for (auto& [k, v] : kv) {
    s.string(k, "key length", k);
    s.put<std::uint32_t>(static_cast<std::uint32_t>(v.type), "value type", k);
    s.value(v, k);
  }
  for (auto& t : g.tensors()) {
    s.string(t.name, "tensor name length", t.name);
    s.put<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()), "n_dims", t.name);
    for (auto d : t.ne) s.put<std::uint64_t>(static_cast<std::uint64_t>(d), "dim", t.name);
    s.put<std::uint32_t>(static_cast<std::uint32_t>(t.type), "tensor type", t.name);
    s.put<std::uint64_t>(t.offset, "offset", t.name);
  }
  l.bytes.resize((l.bytes.size() + g.alignment() - 1) / g.alignment() * g.alignment());
}

// Re-serialises a parsed GGUF (plus `extra_kv`) followed by the original file's data section.
GgufLayout serialise_gguf(const GgufFile& g, const std::vector<char>& original,
                          const std::vector<std::pair<std::string, GgufValue>>& extra_kv = {}) {
  GgufLayout plain;  // without extra keys the header re-serialises byte for byte: its size is the data start
  serialise_gguf_header(g, g.metadata(), plain);
  GgufLayout l;
  auto kv = g.metadata();
  kv.insert(kv.end(), extra_kv.begin(), extra_kv.end());
  serialise_gguf_header(g, kv, l);
  append(l.bytes, original.begin() + static_cast<std::ptrdiff_t>(plain.bytes.size()), original.end());
  return l;
}

// Values tried in a recorded GGUF field, by kind (`v` is the field's real value).
std::vector<std::uint64_t> gguf_values(const std::string& kind, std::uint64_t v) {
  if (kind == "value type" || kind == "array type") {
    std::vector<std::uint64_t> all;
    for (std::uint64_t t = 0; t <= 13; ++t) all.push_back(t);
    all.push_back(0xffffffffu);
    return all;
  }
  if (kind == "tensor type") {
    std::vector<std::uint64_t> all;
    for (std::uint64_t t = 0; t <= 31; ++t) all.push_back(t);
    all.push_back(0xffffffffu);
    return all;
  }
  if (kind == "n_dims") return {0, 1, 2, 3, 4, 5, 0xffffffffu};
  if (kind == "bool") return {2, 0xff};
  if (kind == "version") return {0, 1, 4, 0xffffffffu};
  if (kind == "offset") return {v + 1, v + 32, v - std::min<std::uint64_t>(v, 32), v + (1ull << 20), k2_63, kU64Max - 31};
  if (kind == "dim")
    return {0, v + 1, v * 2, k2_31, k2_32, 1ull << 40, k2_61 + 32, k2_62, kI64Max, kU64Max};
  // Counts and lengths: off by one, then huge.
  return {0, v - std::min<std::uint64_t>(v, 1), v + 1, k2_31, k2_32, k2_62, k2_63, kU64Max};
}

void poke(std::vector<char>& b, const GgufLayout::Field& f, std::uint64_t v) {
  if (f.width == 1) b[f.at] = static_cast<char>(v);
  else if (f.width == 4) { const auto x = static_cast<std::uint32_t>(v); std::memcpy(&b[f.at], &x, 4); }
  else std::memcpy(&b[f.at], &v, 8);
}

std::uint64_t peek(const std::vector<char>& b, const GgufLayout::Field& f) {
  std::uint64_t v = 0;
  std::memcpy(&v, &b[f.at], f.width);
  return v;
}

std::vector<std::pair<std::string, std::vector<char>>> gguf_mutants(const GgufFile& g, const std::vector<char>& original) {
  std::vector<std::pair<std::string, std::vector<char>>> out;
  const GgufLayout l = serialise_gguf(g, original);
  EXPECT_EQ(l.bytes, original) << "the GGUF re-serialiser must reproduce the real file before editing it";
  // Every field kind, at most 6 fields of each (seeded choice), every value of the kind.
  std::map<std::string, std::vector<const GgufLayout::Field*>> by_kind;
  for (auto& f : l.fields) by_kind[f.kind].push_back(&f);
  std::uint64_t seed = 0x5eed0001;
  for (auto& [kind, fields] : by_kind) {
    std::vector<const GgufLayout::Field*> pick = fields;
    while (pick.size() > 6) pick.erase(pick.begin() + static_cast<std::ptrdiff_t>(splitmix64(seed) % pick.size()));
    for (const auto* f : pick)
      for (std::uint64_t v : gguf_values(kind, peek(l.bytes, *f))) {
        auto b = l.bytes;
        poke(b, *f, v);
        out.emplace_back(kind + " of '" + f->label + "' = " + std::to_string(v), std::move(b));
      }
  }
  // Alignment, nesting depth, metadata type swaps (added or replaced keys).
  auto u32 = [](std::uint64_t x) { GgufValue v; v.type = GgufValueType::U32; v.v = x; return v; };
  auto str = [](std::string x) { GgufValue v; v.type = GgufValueType::String; v.v = std::move(x); return v; };
  for (std::uint64_t a : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{3}, std::uint64_t{16}, std::uint64_t{64},
                          std::uint64_t{1} << 17, k2_31})
    out.emplace_back("general.alignment = " + std::to_string(a), serialise_gguf(g, original, {{"general.alignment", u32(a)}}).bytes);
  out.emplace_back("general.alignment as string", serialise_gguf(g, original, {{"general.alignment", str("32")}}).bytes);
  for (int depth : {4, 5, 6, 64}) {
    GgufValue v = u32(1);
    for (int d = 0; d < depth; ++d) {
      GgufValue a;
      a.type = GgufValueType::Array;
      a.elem_type = v.type;
      a.v = std::vector<GgufValue>{v};
      v = a;
    }
    out.emplace_back("array nested " + std::to_string(depth), serialise_gguf(g, original, {{"x.nested", v}}).bytes);
  }
  return out;
}

// ---------------------------------------------------------------- llama2.c --------------------------------------

std::vector<std::pair<std::string, std::vector<char>>> llama2c_mutants(const std::vector<char>& good) {
  std::vector<std::pair<std::string, std::vector<char>>> out;
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int f = 0; f < 7; ++f) {
    std::int32_t v;
    std::memcpy(&v, good.data() + 4 * f, 4);
    for (std::int64_t x : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{INT32_MIN}, std::int64_t{INT32_MAX},
                           std::int64_t{1} << 30, std::int64_t{1} << 20, std::int64_t{v} + 1, std::int64_t{v} * 2,
                           -std::int64_t{v}}) {
      auto b = good;
      const auto x32 = static_cast<std::int32_t>(x);
      std::memcpy(b.data() + 4 * f, &x32, 4);
      out.emplace_back(std::string(names[f]) + " = " + std::to_string(x32), std::move(b));
    }
  }
  // dim * dim products: dim and hidden at the sanity limits together.
  for (auto [d, h] : {std::pair{1 << 20, 1 << 22}, std::pair{1 << 16, 1 << 16}, std::pair{46341, 46341}}) {
    auto b = good;
    std::memcpy(b.data(), &d, 4);
    std::memcpy(b.data() + 4, &h, 4);
    out.emplace_back("dim " + std::to_string(d) + " hidden " + std::to_string(h), std::move(b));
  }
  // Version-1 headers over the same weights: magic, version, then fields; group sizes for version 2.
  for (std::int32_t version : {1, 2, 3, -1}) {
    for (std::int32_t group : {0, -1, 64, INT32_MIN, 1 << 21}) {
      std::vector<char> b(256, 0);
      const std::uint32_t magic = 0x616b3432;
      std::memcpy(b.data(), &magic, 4);
      std::memcpy(b.data() + 4, &version, 4);
      std::memcpy(b.data() + 8, good.data(), 28);
      b[36] = 1;
      std::memcpy(b.data() + 37, &group, 4);
      append(b, good.begin() + 28, good.end());
      out.emplace_back("v1 header version " + std::to_string(version) + " group " + std::to_string(group), std::move(b));
    }
  }
  return out;
}

// ---------------------------------------------------------------- tokenizers ------------------------------------

std::vector<char> varint(std::uint64_t v) {
  std::vector<char> out;
  do {
    out.push_back(static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
    v >>= 7;
  } while (v);
  return out;
}

// tokenizer.model: the length prefix of the first pieces, trainer_spec and normalizer_spec replaced (the
// payload kept), and the string length inside the first pieces.
std::vector<std::pair<std::string, std::vector<char>>> sentencepiece_mutants(const std::vector<char>& good) {
  std::vector<std::pair<std::string, std::vector<char>>> out;
  struct Top { std::size_t tag_at, len_at, payload_at, len; int field; };
  std::vector<Top> tops;
  for (std::size_t p = 0; p < good.size();) {
    const std::size_t tag_at = p;
    const int field = static_cast<unsigned char>(good[p]) >> 3;  // every top-level tag here fits one byte
    ++p;
    std::uint64_t len = 0;
    const std::size_t len_at = p;
    for (int shift = 0;; shift += 7) {
      const auto c = static_cast<unsigned char>(good[p++]);
      len |= static_cast<std::uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) break;
    }
    tops.push_back({tag_at, len_at, p, len, field});
    p += len;
  }
  std::vector<const Top*> chosen;
  for (auto& t : tops)
    if ((t.field == 1 && chosen.size() < 3) || t.field == 2 || t.field == 3) chosen.push_back(&t);
  for (const Top* t : chosen) {
    for (std::uint64_t v : {std::uint64_t{0}, t->len - 1, t->len + 1, k2_31, k2_32, k2_63, kU64Max}) {
      std::vector<char> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(t->len_at));
      const auto vi = varint(v);
      append(b, vi.begin(), vi.end());
      append(b, good.begin() + static_cast<std::ptrdiff_t>(t->payload_at), good.end());
      out.emplace_back("field " + std::to_string(t->field) + " at " + std::to_string(t->tag_at) + " length " +
                           std::to_string(v), std::move(b));
    }
    for (std::uint8_t wire : {0, 1, 3, 5, 7}) {
      auto b = good;
      b[t->tag_at] = static_cast<char>((t->field << 3) | wire);
      out.emplace_back("field " + std::to_string(t->field) + " wire type " + std::to_string(wire), std::move(b));
    }
    if (t->field == 1)  // the piece string's own length byte (field 1 inside the piece)
      for (std::uint8_t v : {std::uint8_t{0}, std::uint8_t{0x7f}, std::uint8_t{0xff}}) {
        auto b = good;
        b[t->payload_at + 1] = static_cast<char>(v);
        out.emplace_back("piece at " + std::to_string(t->tag_at) + " string length byte " + std::to_string(v), std::move(b));
      }
  }
  return out;
}

// tokenizer.bin: max_token_length and the lengths of the first tokens.
std::vector<std::pair<std::string, std::vector<char>>> llama2c_tokenizer_mutants(const std::vector<char>& good) {
  std::vector<std::pair<std::string, std::vector<char>>> out;
  std::vector<std::size_t> len_at;
  for (std::size_t p = 4; p + 8 <= good.size() && len_at.size() < 6;) {
    std::int32_t len;
    std::memcpy(&len, good.data() + p + 4, 4);
    len_at.push_back(p + 4);
    p += 8 + static_cast<std::size_t>(len);
  }
  auto set = [&](std::size_t at, std::int32_t v, const std::string& what) {
    auto b = good;
    std::memcpy(b.data() + at, &v, 4);
    out.emplace_back(what + " = " + std::to_string(v), std::move(b));
  };
  for (std::int32_t v : {0, -1, INT32_MIN, INT32_MAX, 4097}) set(0, v, "max_token_length");
  for (std::size_t k = 0; k < len_at.size(); ++k)
    for (std::int32_t v : {-1, INT32_MIN, INT32_MAX, 1 << 20, 0}) set(len_at[k], v, "token " + std::to_string(k) + " len");
  return out;
}

// A small tokenizer.json with the real file's structure: the first vocabulary ids and the merges among them,
// so each mutant loads in milliseconds (the real file is 9 MB).
ojson small_tokenizer_json(const std::filesystem::path& real) {
  const auto bytes = read_all(real);
  constexpr std::int64_t kKeep = 600;
  // Dropped while parsing (the full DOM is ~0.5 GB): vocabulary ids >= kKeep and merges past the first 3000
  // (merges among the first ids come first). nlohmann::json, not ordered_json: ordered_map inserts are linear.
  std::string top, sub;
  std::size_t n_merges = 0;
  nlohmann::json::parser_callback_t keep = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::key && depth == 1) top = parsed.get<std::string>();
    else if (ev == E::key && depth == 2 && top == "model") sub = parsed.get<std::string>();
    else if (ev == E::value && depth == 3 && top == "model" && sub == "vocab")
      return parsed.is_number_integer() && parsed.get<std::int64_t>() < kKeep;
    else if ((ev == E::value || ev == E::array_end) && depth == 3 && top == "model" && sub == "merges")
      return ++n_merges <= 3000;
    return true;
  };
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), keep);
  nlohmann::json vocab = nlohmann::json::object();
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it)
    if (!it.value().is_discarded() && it.value().get<std::int64_t>() < kKeep) vocab[it.key()] = it.value();
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"]) {
    if (m.is_discarded()) continue;
    std::string a, b;
    if (m.is_string()) {
      const auto s = m.get<std::string>();
      a = s.substr(0, s.find(' '));
      b = s.substr(s.find(' ') + 1);
    } else {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    }
    if (vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) merges.push_back(m);
  }
  nlohmann::json small = j;
  small["model"]["vocab"] = vocab;
  small["model"]["merges"] = merges;
  nlohmann::json added = nlohmann::json::array();
  for (std::size_t k = 0; k < 2; ++k) {
    nlohmann::json a = j["added_tokens"][k];
    a["id"] = kKeep + static_cast<std::int64_t>(k);
    added.push_back(a);
  }
  small["added_tokens"] = added;
  return ojson::parse(small.dump());
}

std::vector<std::pair<std::string, std::string>> tokenizer_json_mutants(const ojson& good) {
  std::vector<std::pair<std::string, std::string>> out;
  auto edit = [&](const std::string& what, const std::function<void(ojson&)>& f) {
    ojson m = good;
    f(m);
    out.emplace_back(what, m.dump());
  };
  std::vector<ojson> values = wrong_types();
  for (const ojson& v : {ojson(-1), ojson(kU64Max), ojson(kI64Max), ojson(std::numeric_limits<std::int64_t>::min())})
    values.push_back(v);
  const std::string first_key = good["model"]["vocab"].begin().key();
  for (const auto& v : values) {
    const std::string d = v.dump();
    edit("model=" + d, [&](ojson& m) { m["model"] = v; });
    edit("model.type=" + d, [&](ojson& m) { m["model"]["type"] = v; });
    edit("model.vocab=" + d, [&](ojson& m) { m["model"]["vocab"] = v; });
    edit("model.vocab[first]=" + d, [&](ojson& m) { m["model"]["vocab"][first_key] = v; });
    edit("model.merges=" + d, [&](ojson& m) { m["model"]["merges"] = v; });
    edit("model.merges[0]=" + d, [&](ojson& m) { m["model"]["merges"][0] = v; });
    edit("model.byte_fallback=" + d, [&](ojson& m) { m["model"]["byte_fallback"] = v; });
    edit("model.ignore_merges=" + d, [&](ojson& m) { m["model"]["ignore_merges"] = v; });
    edit("added_tokens=" + d, [&](ojson& m) { m["added_tokens"] = v; });
    edit("added_tokens[0]=" + d, [&](ojson& m) { m["added_tokens"][0] = v; });
    edit("added_tokens[0].id=" + d, [&](ojson& m) { m["added_tokens"][0]["id"] = v; });
    edit("added_tokens[0].content=" + d, [&](ojson& m) { m["added_tokens"][0]["content"] = v; });
    edit("added_tokens[0].special=" + d, [&](ojson& m) { m["added_tokens"][0]["special"] = v; });
    edit("pre_tokenizer=" + d, [&](ojson& m) { m["pre_tokenizer"] = v; });
    edit("pre_tokenizer.type=" + d, [&](ojson& m) { m["pre_tokenizer"]["type"] = v; });
    edit("pre_tokenizer.pretokenizers=" + d, [&](ojson& m) { m["pre_tokenizer"]["pretokenizers"] = v; });
    edit("pre_tokenizer.pretokenizers[0]=" + d, [&](ojson& m) { m["pre_tokenizer"]["pretokenizers"][0] = v; });
    edit("pre_tokenizer.pretokenizers[0].pattern=" + d,
         [&](ojson& m) { m["pre_tokenizer"]["pretokenizers"][0]["pattern"] = v; });
    edit("pre_tokenizer.pretokenizers[0].behavior=" + d,
         [&](ojson& m) { m["pre_tokenizer"]["pretokenizers"][0]["behavior"] = v; });
    edit("pre_tokenizer.pretokenizers[1].add_prefix_space=" + d,
         [&](ojson& m) { m["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = v; });
    edit("normalizer=" + d, [&](ojson& m) { m["normalizer"] = v; });
  }
  {
    ojson m = good;
    m["model"]["merges"] = "@deep@";
    std::string text = m.dump();
    text.replace(text.find("\"@deep@\""), 8, deep_json_text());
    out.emplace_back("model.merges nested 5000 deep", text);
  }
  edit("top level array", [&](ojson& m) { m = ojson::array({m}); });
  return out;
}

// ---------------------------------------------------------------- datasets --------------------------------------

std::vector<std::pair<std::string, std::string>> dataset_mutants(const ojson& good) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* k : {"instruction", "input", "output"}) {
    for (const auto& v : wrong_types()) {
      ojson m = good;
      m[std::size_t{0}][k] = v;
      out.emplace_back(std::string("record 0 ") + k + "=" + v.dump(), m.dump());
    }
    ojson m = good;
    m[std::size_t{1}].erase(k);
    out.emplace_back(std::string("record 1 without ") + k, m.dump());
  }
  for (const ojson& msgs : {ojson(5), ojson::array(), ojson::array({5}), ojson::array({{{"role", 5}, {"content", "x"}}}),
                            ojson::array({{{"role", "user"}, {"content", ojson::array()}}})}) {
    ojson m = good;
    m[std::size_t{0}] = {{"messages", msgs}};
    out.emplace_back("record 0 messages=" + msgs.dump(), m.dump());
  }
  out.emplace_back("records nested 5000 deep", deep_json_text());
  out.emplace_back("top level object", ojson{{"instruction", "x"}, {"output", "y"}}.dump());
  out.emplace_back("array of numbers", "[1, 2, 3]");
  out.emplace_back("truncated", good.dump().substr(0, 100));
  return out;
}

// ---------------------------------------------------------------- bnb-4bit --------------------------------------

std::vector<std::pair<std::string, std::string>> quant_state_mutants(const ojson& good) {
  std::vector<std::pair<std::string, std::string>> out;
  auto edit = [&](const std::string& what, const std::function<void(ojson&)>& f) {
    ojson m = good;
    f(m);
    out.emplace_back(what, m.dump());
  };
  for (const auto& d : hostile_dims())
    for (std::size_t pos : {0u, 1u})
      edit("shape[" + std::to_string(pos) + "]=" + d.dump(), [&](ojson& m) { m["shape"][pos] = d; });
  for (const ojson& shape : {ojson{k2_32, k2_32}, ojson{k2_62, 4}, ojson{k2_31, k2_31}, ojson{0, 0}, ojson{64},
                             ojson{64, 64, 1}, ojson::array()})
    edit("shape=" + shape.dump(), [&](ojson& m) { m["shape"] = shape; });
  for (const auto& v : wrong_types()) {
    for (const char* k : {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"})
      edit(std::string(k) + "=" + v.dump(), [&](ojson& m) { m[k] = v; });
    edit("shape[0]=" + v.dump(), [&](ojson& m) { m["shape"][std::size_t{0}] = v; });
  }
  for (const char* k : {"quant_type", "blocksize", "shape", "nested_blocksize", "nested_offset"})
    edit(std::string("without ") + k, [&](ojson& m) { m.erase(k); });
  for (const ojson& v : {ojson(-1), ojson(kU64Max), ojson(k2_63), ojson(0)}) {
    edit("blocksize=" + v.dump(), [&](ojson& m) { m["blocksize"] = v; });
    edit("nested_blocksize=" + v.dump(), [&](ojson& m) { m["nested_blocksize"] = v; });
  }
  out.emplace_back("quant_state is an array", "[1]");
  out.emplace_back("quant_state invalid JSON", "{\"quant_type\": ");
  return out;
}

}  // namespace

namespace {

constexpr const char* kSample = "Once upon a time, there was a little girl named Lily. She liked to play outside.";

struct Tally {
  const char* family;
  Corpus& c;
  int cases0 = c.cases, rejected0 = c.rejected, failed0 = c.failed;
  ~Tally() {
    const int n = c.cases - cases0, r = c.rejected - rejected0;
    std::printf("[hostile] %-22s %5d cases: %5d loaded cleanly, %5d rejected with a named error, %d failures\n", family,
                n, n - r, r, c.failed - failed0);
  }
};

// The HF checkpoint folder: model.safetensors + config.json, through inspect and quantize.
void check_hf_dir(Corpus& c, const std::string& what, const std::filesystem::path& dir) {
  c.check("inspect " + what, dir.filename().string(), [&] {
    auto ck = SafetensorsCheckpoint::open(dir);
    std::uint64_t total = 0;
    for (auto* t : ck.tensors()) total += t->nbytes + static_cast<std::uint64_t>(shape_numel(t->shape));
    (void)total;
    llama_config_from_hf(dir / "config.json");
  });
  c.check("quantize " + what, dir.filename().string(), [&] { quantize_like_cli(dir, c.tmp / "quantized"); });
}

void write_hf_dir(const std::filesystem::path& dir, const std::vector<char>& st, const std::string& config) {
  std::filesystem::create_directories(dir);
  write_all(dir / "model.safetensors", st);
  write_all(dir / "config.json", std::vector<char>(config.begin(), config.end()));
}

TEST(HostileHeaders, SafetensorsShapeWhoseByteCountWrapsIsRejected) {
  // F64 [2^62] (and [2^61 + 32]) with an empty data range: numel * 8 wraps around 2^64 to 0, which used to pass
  // the header check and crash `quantize` while converting the tensor.
  POCKETLORA_REQUIRE_DATA(st, "models/stories260K/derived/hf/model.safetensors");
  POCKETLORA_REQUIRE_DATA(cfg, "models/stories260K/derived/hf/config.json");
  TempDir tmp;
  const auto config = read_all(cfg);
  for (std::uint64_t n : {k2_62, k2_61 + 32}) {
    SafetensorsImage img = SafetensorsImage::parse(read_all(st));
    const std::size_t i = img.index("model.norm.weight");
    img.entries[i].second = {{"dtype", "F64"}, {"shape", {n}}};
    img.blobs[i].clear();
    const auto dir = tmp / "hf-wrap";
    write_hf_dir(dir, img.serialise(), std::string(config.begin(), config.end()));
    for (const auto& load : std::vector<std::function<void()>>{
             [&] { SafetensorsCheckpoint::open(dir); }, [&] { quantize_like_cli(dir, tmp / "out"); }}) {
      try {
        load();
        ADD_FAILURE() << "F64 [" << n << "] with no bytes was accepted";
      } catch (const FormatError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("hf-wrap/model.safetensors"), std::string::npos) << msg;
        EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
      }
    }
  }
}

TEST(HostileHeaders, SafetensorsAndConfig) {
  POCKETLORA_REQUIRE_DATA(st, "models/stories260K/derived/hf/model.safetensors");
  POCKETLORA_REQUIRE_DATA(cfg, "models/stories260K/derived/hf/config.json");
  TempDir tmp;
  Corpus c{tmp};
  const SafetensorsImage good = SafetensorsImage::parse(read_all(st));
  const auto cfg_bytes = read_all(cfg);
  const std::string config(cfg_bytes.begin(), cfg_bytes.end());
  const auto dir = tmp / "hf-mutant";
  {
    write_hf_dir(dir, good.serialise(), config);
    SafetensorsCheckpoint::open(dir);
    EXPECT_NO_THROW(quantize_like_cli(dir, tmp / "quantized")) << "the unedited re-serialised checkpoint must load";
  }
  {
    Tally t{"safetensors header", c};
    for (auto& [what, bytes] : safetensors_mutants(good, {"model.norm.weight", "model.embed_tokens.weight",
                                                          "model.layers.0.self_attn.q_proj.weight",
                                                          "model.layers.4.mlp.down_proj.weight"})) {
      write_hf_dir(dir, bytes, config);
      check_hf_dir(c, what, dir);
    }
  }
  {
    Tally t{"config.json", c};
    const std::vector<char> st_bytes = good.serialise();
    for (auto& [what, text] : config_mutants(ojson::parse(config))) {
      write_hf_dir(dir, st_bytes, text);
      check_hf_dir(c, what, dir);
    }
  }
  EXPECT_EQ(c.failed, 0);
}

TEST(HostileHeaders, Gguf) {
  POCKETLORA_REQUIRE_DATA(gg, "models/stories260K/derived/stories260K-mixed-Q4_0.gguf");
  TempDir tmp;
  Corpus c{tmp};
  const auto original = read_all(gg);
  const GgufFile g = GgufFile::open(gg);
  Tally t{"GGUF header", c};
  for (auto& [what, bytes] : gguf_mutants(g, original)) {
    const auto p = tmp / "mutant.gguf";
    write_all(p, bytes);
    c.check("inspect " + what, "mutant.gguf", [&] {
      auto f = GgufFile::open(p);
      for (auto& ti : f.tensors()) f.load_f32(ti.name);
      llama_config_from_gguf(f);
    });
    c.check("quantize " + what, "mutant.gguf", [&] { quantize_like_cli(p, tmp / "quantized"); });
    c.check("tokenizer " + what, "mutant.gguf", [&] { load_tokenizer(p)->encode(kSample, true); });
  }
  EXPECT_EQ(c.failed, 0);
}

TEST(HostileHeaders, Llama2c) {
  POCKETLORA_REQUIRE_DATA(l2, "models/stories260K/stories260K.bin");
  TempDir tmp;
  Corpus c{tmp};
  Tally t{"llama2.c header", c};
  for (auto& [what, bytes] : llama2c_mutants(read_all(l2)))
    c.run("mutant.bin", bytes, [&](const std::filesystem::path& p) { quantize_like_cli(p, tmp / "quantized"); });
  EXPECT_EQ(c.failed, 0);
}

TEST(HostileHeaders, Tokenizers) {
  POCKETLORA_REQUIRE_DATA(tok512, "models/stories260K/tok512.bin");
  POCKETLORA_REQUIRE_DATA(spm, "tokenizers/llama2/tokenizer.model");
  POCKETLORA_REQUIRE_DATA(tj, "tokenizers/llama3/tokenizer.json");
  TempDir tmp;
  Corpus c{tmp};
  auto encode = [](const std::filesystem::path& p) {
    auto tok = load_tokenizer(p);
    const auto ids = tok->encode(kSample, true);
    tok->decode(ids);
  };
  {
    Tally t{"tokenizer.bin", c};
    for (auto& [what, bytes] : llama2c_tokenizer_mutants(read_all(tok512))) c.run("mutant-tokenizer.bin", bytes, encode);
  }
  {
    Tally t{"tokenizer.model", c};
    for (auto& [what, bytes] : sentencepiece_mutants(read_all(spm))) c.run("mutant-tokenizer.model", bytes, encode);
  }
  {
    Tally t{"tokenizer.json", c};
    const ojson small = small_tokenizer_json(tj);
    const auto dir = tmp / "tj";
    std::filesystem::create_directories(dir);
    const std::string base = small.dump();
    write_all(dir / "tokenizer.json", std::vector<char>(base.begin(), base.end()));
    EXPECT_NO_THROW(encode(dir / "tokenizer.json")) << "the reduced tokenizer.json must load before it is edited";
    for (auto& [what, text] : tokenizer_json_mutants(small))
      c.run("tj/tokenizer.json", std::vector<char>(text.begin(), text.end()), encode);
  }
  EXPECT_EQ(c.failed, 0);
}

TEST(HostileHeaders, Datasets) {
  POCKETLORA_REQUIRE_DATA(alpaca, "datasets/alpaca_en_demo.json");
  TempDir tmp;
  Corpus c{tmp};
  const auto bytes = read_all(alpaca);
  ojson all = ojson::parse(bytes.begin(), bytes.end());
  ojson few = ojson::array();
  for (std::size_t i = 0; i < 5; ++i) few.push_back(all[i]);
  Tally t{"alpaca json", c};
  for (auto& [what, text] : dataset_mutants(few))
    c.run("mutant-alpaca.json", std::vector<char>(text.begin(), text.end()),
          [](const std::filesystem::path& p) { read_records(p); });
  EXPECT_EQ(c.failed, 0);
}

TEST(HostileHeaders, Bnb4bitCheckpoint) {
  POCKETLORA_REQUIRE_DATA(l2, "models/stories260K/stories260K.bin");
  TempDir tmp;
  Corpus c{tmp};
  const auto made = tmp / "made";
  quantize_like_cli(l2, made);
  const SafetensorsImage good = SafetensorsImage::parse(read_all(made / "model.safetensors"));
  const auto cfg_bytes = read_all(made / "config.json");
  const std::string config(cfg_bytes.begin(), cfg_bytes.end());
  const auto dir = tmp / "bnb-mutant";
  auto load = [&](const std::string& what) {
    c.check("load " + what, "bnb-mutant", [&] {
      is_bnb4bit_checkpoint(dir);
      const Bnb4bitModel m = load_bnb4bit(dir);
      for (auto& [name, q] : m.linears) dequantize_nf4(q);
    });
  };
  const std::string w = "model.layers.0.self_attn.q_proj.weight";
  {
    Tally t{"bnb-4bit quant_state", c};
    const std::size_t i = good.index(w + ".quant_state.bitsandbytes__nf4");
    const ojson state = ojson::parse(good.blobs[i].begin(), good.blobs[i].end());
    for (auto& [what, text] : quant_state_mutants(state)) {
      SafetensorsImage m = good;
      m.blobs[i].assign(text.begin(), text.end());
      m.entries[i].second["shape"] = {text.size()};
      write_hf_dir(dir, m.serialise(), config);
      load(what);
    }
  }
  {
    Tally t{"bnb-4bit tensors", c};
    for (auto& [what, bytes] : safetensors_mutants(good, {w, w + ".absmax", w + ".nested_absmax"})) {
      write_hf_dir(dir, bytes, config);
      load(what);
    }
  }
  {
    Tally t{"bnb-4bit config.json", c};
    const std::vector<char> st_bytes = good.serialise();
    for (const ojson& v : wrong_types()) {
      ojson m = ojson::parse(config);
      m["quantization_config"]["bnb_4bit_compute_dtype"] = v;
      write_hf_dir(dir, st_bytes, m.dump());
      load("quantization_config.bnb_4bit_compute_dtype=" + v.dump());
    }
  }
  EXPECT_EQ(c.failed, 0);
}

}  // namespace
