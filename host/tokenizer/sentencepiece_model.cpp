// SentencePiece tokenizer.model reader: the protobuf wire format parsed by hand (no protobuf dependency).
// Field numbers from sentencepiece_model.proto: ModelProto{1 pieces, 2 trainer_spec, 3 normalizer_spec},
// SentencePiece{1 piece, 2 score, 3 type}, TrainerSpec{3 model_type, 24 treat_whitespace_as_suffix,
// 35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id, 44 unk_surface}, NormalizerSpec{1 name,
// 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces}.
#include <cstring>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/tokenizer/spm.h"
#include "host/util/mapped_file.h"

namespace pocketlora {
namespace {

// One message's bytes; every read is bounds-checked and errors name the file and the field being read.
class ProtoReader {
 public:
  ProtoReader(const std::uint8_t* p, std::size_t n, const std::string& file, std::string where)
      : p_(p), end_(p + n), file_(file), where_(std::move(where)) {}

  bool done() const { return p_ >= end_; }

  std::uint64_t varint(const char* field) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail(field, "truncated varint");
      const std::uint8_t b = *p_++;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(field, "varint longer than 10 bytes");
  }

  // Reads a tag; returns {field number, wire type}.
  std::pair<std::uint32_t, std::uint32_t> tag() {
    const std::uint64_t t = varint("tag");
    if ((t >> 3) == 0 || (t >> 3) > 0x1FFFFFFF) fail("tag", fmt::format("invalid field number {}", t >> 3));
    return {static_cast<std::uint32_t>(t >> 3), static_cast<std::uint32_t>(t & 7)};
  }

  std::span<const std::uint8_t> bytes(const char* field) {
    const std::uint64_t n = varint(field);
    if (n > static_cast<std::uint64_t>(end_ - p_))
      fail(field, fmt::format("length {} runs past the end ({} bytes left)", n, end_ - p_));
    std::span<const std::uint8_t> s(p_, static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }

  float fixed32_float(const char* field) {
    if (end_ - p_ < 4) fail(field, "truncated fixed32");
    std::uint32_t u = static_cast<std::uint32_t>(p_[0]) | static_cast<std::uint32_t>(p_[1]) << 8 |
                      static_cast<std::uint32_t>(p_[2]) << 16 | static_cast<std::uint32_t>(p_[3]) << 24;
    p_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }

  void expect_wire(std::uint32_t wire, std::uint32_t want, const char* field) {
    if (wire != want) fail(field, fmt::format("wire type {} (expected {})", wire, want));
  }

  void skip(std::uint32_t field, std::uint32_t wire) {
    const std::string name = fmt::format("field {}", field);
    switch (wire) {
      case 0: varint(name.c_str()); break;
      case 1:
        if (end_ - p_ < 8) fail(name.c_str(), "truncated fixed64");
        p_ += 8;
        break;
      case 2: bytes(name.c_str()); break;
      case 5:
        if (end_ - p_ < 4) fail(name.c_str(), "truncated fixed32");
        p_ += 4;
        break;
      default: fail(name.c_str(), fmt::format("unsupported wire type {}", wire));
    }
  }

  [[noreturn]] void fail(const char* field, const std::string& what) const {
    throw FormatError(fmt::format("{}: SentencePiece model {}.{}: {}", file_, where_, field, what));
  }

  const std::string& file() const { return file_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  const std::string& file_;
  std::string where_;
};

std::string as_string(std::span<const std::uint8_t> s) { return {reinterpret_cast<const char*>(s.data()), s.size()}; }

// Protobuf int32 fields are sign-extended to 64 bits on the wire (-1 is ten bytes of 0xFF..).
std::optional<std::int32_t> as_id(std::uint64_t v) {
  const auto s = static_cast<std::int64_t>(v);
  if (s < 0 || s > INT32_MAX) return std::nullopt;
  return static_cast<std::int32_t>(s);
}

}  // namespace

SpmVocab read_sentencepiece_model(const std::filesystem::path& path) {
  MappedFile file(path);
  SpmVocab v;
  v.source = path.string();
  // Proto defaults (proto2): model_type UNIGRAM, unk/bos/eos 0/1/2, add_dummy_prefix, remove_extra_whitespaces
  // and escape_whitespaces true, byte_fallback false.
  int model_type = 1;
  std::optional<std::int32_t> unk = 0, bos = 1, eos = 2;
  bool byte_fallback = false, add_dummy_prefix = true, remove_extra = true, escape_ws = true, ws_suffix = false;
  std::string norm_name;
  std::size_t charsmap_size = 0;
  bool saw_trainer = false;

  ProtoReader top(file.data(), file.size(), v.source, "ModelProto");
  if (file.size() == 0) top.fail("pieces", "empty file");
  while (!top.done()) {
    const auto [field, wire] = top.tag();
    if (field == 1) {
      top.expect_wire(wire, 2, "pieces");
      const auto msg = top.bytes("pieces");
      ProtoReader r(msg.data(), msg.size(), v.source, fmt::format("pieces[{}]", v.pieces.size()));
      std::string piece;
      bool has_piece = false;
      float score = 0.0f;
      std::uint64_t type = 1;
      while (!r.done()) {
        const auto [f, w] = r.tag();
        if (f == 1) {
          r.expect_wire(w, 2, "piece");
          piece = as_string(r.bytes("piece"));
          has_piece = true;
        } else if (f == 2) {
          r.expect_wire(w, 5, "score");
          score = r.fixed32_float("score");
        } else if (f == 3) {
          r.expect_wire(w, 0, "type");
          type = r.varint("type");
          if (type < 1 || type > 6) r.fail("type", fmt::format("value {} (expected 1..6)", type));
        } else {
          r.skip(f, w);
        }
      }
      if (!has_piece) r.fail("piece", "missing");
      v.pieces.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(static_cast<SpmTokenType>(type));
    } else if (field == 2) {
      top.expect_wire(wire, 2, "trainer_spec");
      saw_trainer = true;
      const auto msg = top.bytes("trainer_spec");
      ProtoReader r(msg.data(), msg.size(), v.source, "trainer_spec");
      while (!r.done()) {
        const auto [f, w] = r.tag();
        switch (f) {
          case 3: r.expect_wire(w, 0, "model_type"); model_type = static_cast<int>(r.varint("model_type")); break;
          case 24: r.expect_wire(w, 0, "treat_whitespace_as_suffix"); ws_suffix = r.varint("treat_whitespace_as_suffix") != 0; break;
          case 35: r.expect_wire(w, 0, "byte_fallback"); byte_fallback = r.varint("byte_fallback") != 0; break;
          case 40: r.expect_wire(w, 0, "unk_id"); unk = as_id(r.varint("unk_id")); break;
          case 41: r.expect_wire(w, 0, "bos_id"); bos = as_id(r.varint("bos_id")); break;
          case 42: r.expect_wire(w, 0, "eos_id"); eos = as_id(r.varint("eos_id")); break;
          case 44: r.expect_wire(w, 2, "unk_surface"); v.unk_surface = as_string(r.bytes("unk_surface")); break;
          default: r.skip(f, w);
        }
      }
    } else if (field == 3) {
      top.expect_wire(wire, 2, "normalizer_spec");
      const auto msg = top.bytes("normalizer_spec");
      ProtoReader r(msg.data(), msg.size(), v.source, "normalizer_spec");
      while (!r.done()) {
        const auto [f, w] = r.tag();
        switch (f) {
          case 1: r.expect_wire(w, 2, "name"); norm_name = as_string(r.bytes("name")); break;
          case 2: r.expect_wire(w, 2, "precompiled_charsmap"); charsmap_size = r.bytes("precompiled_charsmap").size(); break;
          case 3: r.expect_wire(w, 0, "add_dummy_prefix"); add_dummy_prefix = r.varint("add_dummy_prefix") != 0; break;
          case 4: r.expect_wire(w, 0, "remove_extra_whitespaces"); remove_extra = r.varint("remove_extra_whitespaces") != 0; break;
          case 5: r.expect_wire(w, 0, "escape_whitespaces"); escape_ws = r.varint("escape_whitespaces") != 0; break;
          default: r.skip(f, w);
        }
      }
    } else {
      top.skip(field, wire);
    }
  }
  if (v.pieces.empty()) top.fail("pieces", "no pieces");
  if (!saw_trainer) top.fail("trainer_spec", "missing");
  // Only what Llama-family models use is implemented; anything else would tokenize differently, so refuse.
  if (model_type != 2)
    top.fail("trainer_spec.model_type", fmt::format("{} (only BPE = 2 is supported; 1 = unigram is not)", model_type));
  if (ws_suffix) top.fail("trainer_spec.treat_whitespace_as_suffix", "true is not supported");
  if (!escape_ws) top.fail("normalizer_spec.escape_whitespaces", "false is not supported");
  if (charsmap_size != 0 && norm_name != "identity")
    top.fail("normalizer_spec.precompiled_charsmap",
             fmt::format("normalizer '{}' needs a character map ({} bytes); only 'identity' is supported", norm_name,
                         charsmap_size));
  v.bos = bos;
  v.eos = eos;
  v.unk = unk;
  v.byte_fallback = byte_fallback;
  v.add_dummy_prefix = add_dummy_prefix;
  v.remove_extra_whitespaces = remove_extra;
  return v;
}

}  // namespace pocketlora
