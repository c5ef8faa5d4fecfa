// Vocabulary from a GGUF file's tokenizer.ggml.* metadata (llama.cpp's names: tokens, scores, token_type,
// bos/eos/unknown_token_id, add_space_prefix). Only the metadata section is read, bounds-checked against the
// file; tensors are ignored. tokenizer.ggml.model "llama" is SentencePiece BPE; other models are refused.
//
// This is a small reader of its own because no general GGUF reader existed in the tree when it was written;
// once host/model/gguf.h (GgufFile) lands, the metadata walk below should be replaced by it.
#include <cstring>
#include <variant>

#include <fmt/format.h>

#include "host/model/tokenizer_spm.h"
#include "host/util/error.h"
#include "host/util/mapped_file.h"

namespace pocketlora {
namespace {

enum GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12
};

std::size_t scalar_size(std::uint32_t t) {
  switch (t) {
    case U8: case I8: case BOOL: return 1;
    case U16: case I16: return 2;
    case U32: case I32: case F32: return 4;
    case U64: case I64: case F64: return 8;
    default: return 0;
  }
}

class Cursor {
 public:
  Cursor(const MappedFile& f) : p_(f.data()), end_(f.data() + f.size()), file_(f.path().string()) {}

  [[noreturn]] void fail(std::string_view what) const {
    throw FormatError(fmt::format("{}: GGUF metadata {}: {}", file_, where_, what));
  }
  void at(std::string where) { where_ = std::move(where); }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

  template <class T>
  T read() {
    if (left() < sizeof(T)) fail(fmt::format("truncated ({} bytes needed, {} left)", sizeof(T), left()));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string_view str() {
    const auto n = read<std::uint64_t>();
    if (n > left()) fail(fmt::format("string of {} bytes runs past the end ({} left)", n, left()));
    std::string_view s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  // Any integer-typed scalar as int64.
  std::int64_t integer(std::uint32_t t) {
    switch (t) {
      case U8: return read<std::uint8_t>();
      case I8: return read<std::int8_t>();
      case U16: return read<std::uint16_t>();
      case I16: return read<std::int16_t>();
      case U32: return read<std::uint32_t>();
      case I32: return read<std::int32_t>();
      case U64: return static_cast<std::int64_t>(read<std::uint64_t>());
      case I64: return read<std::int64_t>();
      case BOOL: return read<std::uint8_t>();
      default: fail(fmt::format("type {} where an integer was expected", t));
    }
  }
  void skip(std::uint32_t t, int depth = 0) {
    if (t == STRING) {
      str();
    } else if (t == ARRAY) {
      if (depth > 4) fail("arrays nested deeper than 4");
      const auto et = read<std::uint32_t>();
      const auto n = read<std::uint64_t>();
      if (const std::size_t sz = scalar_size(et)) {
        if (n > left() / sz) fail(fmt::format("array of {} x {}-byte values runs past the end", n, sz));
        p_ += n * sz;
      } else {
        if (et != STRING && et != ARRAY) fail(fmt::format("array element type {} unknown", et));
        if (n > left() / 8) fail(fmt::format("array of {} values runs past the end", n));
        for (std::uint64_t i = 0; i < n; ++i) skip(et, depth + 1);
      }
    } else if (const std::size_t sz = scalar_size(t)) {
      if (left() < sz) fail("truncated value");
      p_ += sz;
    } else {
      fail(fmt::format("value type {} unknown", t));
    }
  }
  // Array header of a given element type; returns its length, checked against the bytes left.
  std::uint64_t array_of(std::uint32_t t, std::uint32_t want, std::size_t min_elem) {
    if (t != ARRAY) fail(fmt::format("type {} (expected an array)", t));
    const auto et = read<std::uint32_t>();
    if (et != want) fail(fmt::format("array of type {} (expected {})", et, want));
    const auto n = read<std::uint64_t>();
    if (n > left() / min_elem) fail(fmt::format("array of {} values runs past the end", n));
    return n;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  std::string file_;
  std::string where_ = "header";
};

}  // namespace

SpmVocab read_gguf_spm_vocab(const std::filesystem::path& path) {
  MappedFile file(path);
  Cursor c(file);
  SpmVocab v;
  v.source = path.string();
  c.at("magic");
  if (c.read<std::uint32_t>() != 0x46554747u) c.fail("not 'GGUF'");
  c.at("version");
  const auto version = c.read<std::uint32_t>();
  if (version < 2 || version > 3) c.fail(fmt::format("{} (only 2 and 3 are supported)", version));
  c.at("tensor_count");
  (void)c.read<std::uint64_t>();
  c.at("metadata_kv_count");
  const auto n_kv = c.read<std::uint64_t>();
  std::string model;
  bool has_tokens = false, has_scores = false, has_types = false;
  std::optional<std::int32_t> bos, eos, unk;
  auto as_id = [&](std::int64_t x) -> std::optional<std::int32_t> {
    if (x < 0 || x > INT32_MAX) return std::nullopt;  // llama.cpp writes 0xFFFFFFFF for "none"
    return static_cast<std::int32_t>(x);
  };
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    c.at(fmt::format("key #{}", k));
    const std::string key(c.str());
    c.at(key);
    const auto t = c.read<std::uint32_t>();
    if (key == "tokenizer.ggml.model") {
      if (t != STRING) c.fail("not a string");
      model = c.str();
    } else if (key == "tokenizer.ggml.tokens") {
      const auto n = c.array_of(t, STRING, 8);
      v.pieces.reserve(static_cast<std::size_t>(n));
      for (std::uint64_t i = 0; i < n; ++i) v.pieces.emplace_back(c.str());
      has_tokens = true;
    } else if (key == "tokenizer.ggml.scores") {
      const auto n = c.array_of(t, F32, 4);
      v.scores.resize(static_cast<std::size_t>(n));
      for (auto& s : v.scores) s = c.read<float>();
      has_scores = true;
    } else if (key == "tokenizer.ggml.token_type") {
      const auto n = c.array_of(t, I32, 4);
      v.types.resize(static_cast<std::size_t>(n));
      for (std::size_t i = 0; i < v.types.size(); ++i) {
        const auto ty = c.read<std::int32_t>();
        // llama.cpp's type 0 is "undefined"; treat it as normal.
        if (ty < 0 || ty > 6) c.fail(fmt::format("token {} has type {} (expected 0..6)", i, ty));
        v.types[i] = ty == 0 ? SpmTokenType::Normal : static_cast<SpmTokenType>(ty);
      }
      has_types = true;
    } else if (key == "tokenizer.ggml.bos_token_id") {
      bos = as_id(c.integer(t));
    } else if (key == "tokenizer.ggml.eos_token_id") {
      eos = as_id(c.integer(t));
    } else if (key == "tokenizer.ggml.unknown_token_id") {
      unk = as_id(c.integer(t));
    } else if (key == "tokenizer.ggml.add_space_prefix") {
      v.add_dummy_prefix = c.integer(t) != 0;
    } else {
      c.skip(t);
    }
  }
  c.at("tokenizer.ggml.model");
  if (model.empty()) c.fail("missing (the file has no tokenizer)");
  if (model != "llama")
    c.fail(fmt::format("'{}' (only 'llama' = SentencePiece BPE is supported from GGUF; use tokenizer.json for "
                       "byte-level BPE)", model));
  c.at("tokenizer.ggml.tokens");
  if (!has_tokens) c.fail("missing");
  c.at("tokenizer.ggml.scores");
  if (!has_scores) c.fail("missing");
  if (!has_types) v.types.assign(v.pieces.size(), SpmTokenType::Normal);
  v.bos = bos;
  v.eos = eos;
  v.unk = unk;
  v.byte_fallback = true;
  v.remove_extra_whitespaces = false;
  return v;
}

}  // namespace pocketlora
