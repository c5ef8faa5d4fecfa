// Tokenizer file readers on generated and damaged input: a hand-built SentencePiece model with hand-computed
// merges, and truncated / mutated files that must fail with FormatError naming the file (never crash or hang).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "host/core/error.h"
#include "host/tokenizer/spm.h"
#include "host/tokenizer/tokenizer.h"
#include "tests/common/test_data.h"
#include "tests/model/test_tokenizer_util.h"

namespace pocketlora {
namespace {

// Minimal protobuf writer for building SentencePiece models in tests.
struct Pb {
  std::string b;
  Pb& varint(std::uint64_t v) {
    do {
      std::uint8_t c = v & 0x7F;
      v >>= 7;
      if (v) c |= 0x80;
      b += static_cast<char>(c);
    } while (v);
    return *this;
  }
  Pb& tag(int field, int wire) { return varint(static_cast<std::uint64_t>(field) << 3 | static_cast<unsigned>(wire)); }
  Pb& bytes(int field, std::string_view s) {
    tag(field, 2).varint(s.size());
    b += s;
    return *this;
  }
  Pb& num(int field, std::int64_t v) { return tag(field, 0).varint(static_cast<std::uint64_t>(v)); }
  Pb& f32(int field, float f) {
    tag(field, 5);
    char c[4];
    std::memcpy(c, &f, 4);
    b.append(c, 4);
    return *this;
  }
};

std::string tiny_model(int model_type = 2, bool byte_fallback = false) {
  struct P {
    const char* s;
    float score;
    int type;
  };
  const P pieces[] = {{"<unk>", 0, 2},       {"<s>", 0, 3},   {"</s>", 0, 3},   {"\xE2\x96\x81", -5, 1},
                      {"a", -1, 1},          {"b", -2, 1},    {"ab", -3, 1},    {"\xE2\x96\x81" "a", -0.5f, 1},
                      {"bb", -4, 1}};
  Pb m;
  for (const P& p : pieces) {
    Pb e;
    e.bytes(1, p.s).f32(2, p.score).num(3, p.type);
    m.bytes(1, e.b);
  }
  Pb trainer;
  trainer.num(3, model_type).num(35, byte_fallback).num(40, 0).num(41, 1).num(42, 2).num(43, -1);
  m.bytes(2, trainer.b);
  Pb norm;
  norm.bytes(1, "identity").num(3, 1).num(4, 0);
  m.bytes(3, norm.b);
  return m.b;
}

TEST(TokenizerFormats, HandBuiltSentencePieceModelMerges) {
  test::TempDir dir;
  test::write_bytes(dir / "tiny.model", tiny_model());
  auto tok = load_tokenizer(dir / "tiny.model");
  EXPECT_EQ(tok->vocab_size(), 9);
  // "▁abb": pairs ▁a (-0.5), ab (-3), bb (-4): ▁a first; "▁ab" is no piece, so bb next -> [▁a, bb].
  EXPECT_EQ(tok->encode("abb", true), (std::vector<std::int32_t>{1, 7, 8}));
  // "ab ab": ▁a then the second ▁a; "ab" loses to "▁a" on score; b stays alone.
  EXPECT_EQ(tok->encode("ab ab", false), (std::vector<std::int32_t>{7, 5, 7, 5}));
  // 'c' is unknown and byte fallback is off: <unk>.
  EXPECT_EQ(tok->encode("c", false), (std::vector<std::int32_t>{3, 0}));
  EXPECT_EQ(tok->decode(std::vector<std::int32_t>{1, 7, 8}), "abb");
  EXPECT_EQ(tok->decode(std::vector<std::int32_t>{3, 0}), " \xE2\x81\x87 ");
}

TEST(TokenizerFormats, UnsupportedSentencePieceSettingsAreRefused) {
  test::TempDir dir;
  test::write_bytes(dir / "uni.model", tiny_model(1));
  try {
    load_tokenizer(dir / "uni.model");
    FAIL() << "unigram model accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("model_type"), std::string::npos) << e.what();
  }
}

void expect_format_error(const std::filesystem::path& p, const std::string& field_hint) {
  try {
    load_tokenizer(p);
    ADD_FAILURE() << p << " loaded";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    if (!field_hint.empty()) {
      EXPECT_NE(msg.find(field_hint), std::string::npos) << msg;
    }
  }
}

TEST(TokenizerFormats, TruncatedSentencePieceModel) {
  POCKETLORA_REQUIRE_DATA(model, "tokenizers/llama2/tokenizer.model");
  const std::string full = test::read_text(model);
  test::TempDir dir;
  const auto p = dir / "cut.model";
  for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{1000}, full.size() / 2,
                        full.size() - 30, full.size() - 1}) {
    test::write_bytes(p, std::string_view(full).substr(0, n));
    expect_format_error(p, "");
  }
  // Cut exactly after the last piece (walk the top-level fields): every piece parses, the trainer spec is missing.
  std::size_t at = 0;
  while (at < full.size() && full[at] == '\x0A') {
    std::uint64_t len = 0;
    int shift = 0;
    for (++at; static_cast<unsigned char>(full[at]) & 0x80; ++at, shift += 7)
      len |= static_cast<std::uint64_t>(full[at] & 0x7F) << shift;
    len |= static_cast<std::uint64_t>(full[at] & 0x7F) << shift;
    at += 1 + len;
  }
  ASSERT_LT(at, full.size());
  test::write_bytes(p, std::string_view(full).substr(0, at));
  expect_format_error(p, "trainer_spec");
}

TEST(TokenizerFormats, TruncatedLlama2cTokenizer) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/tok512.bin");
  const std::string full = test::read_text(bin);
  test::TempDir dir;
  const auto p = dir / "cut.bin";
  test::write_bytes(p, std::string_view(full).substr(0, full.size() - 3));
  expect_format_error(p, "token 511");
  test::write_bytes(p, std::string_view(full).substr(0, 10));
  expect_format_error(p, "token 0");
  // A length field beyond max_token_length.
  std::string bad = full;
  bad[8] = '\x7F';
  test::write_bytes(p, bad);
  expect_format_error(p, "max_token_length");
}

// Minimal GGUF v3 writer: metadata only, no tensors.
struct GgufWriter {
  std::string b;
  std::uint64_t n_kv = 0;
  template <class T>
  void raw(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(std::string_view s) {
    raw<std::uint64_t>(s.size());
    b += s;
  }
  void kv_str(std::string_view k, std::string_view v) {
    str(k), raw<std::uint32_t>(8), str(v), ++n_kv;
  }
  void kv_u32(std::string_view k, std::uint32_t v) {
    str(k), raw<std::uint32_t>(4), raw(v), ++n_kv;
  }
  void kv_strings(std::string_view k, const std::vector<std::string>& v) {
    str(k), raw<std::uint32_t>(9), raw<std::uint32_t>(8), raw<std::uint64_t>(v.size());
    for (const auto& s : v) str(s);
    ++n_kv;
  }
  void kv_floats(std::string_view k, const std::vector<float>& v) {
    str(k), raw<std::uint32_t>(9), raw<std::uint32_t>(6), raw<std::uint64_t>(v.size());
    for (float f : v) raw(f);
    ++n_kv;
  }
  std::string file() const {
    GgufWriter h;
    h.b = "GGUF";
    h.raw<std::uint32_t>(3);
    h.raw<std::uint64_t>(0);
    h.raw<std::uint64_t>(n_kv);
    return h.b + b;
  }
};

TEST(TokenizerFormats, GgufVocabularyHandBuiltAndBroken) {
  test::TempDir dir;
  const auto p = dir / "v.gguf";
  const std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a"};
  const std::vector<float> scores = {0, 0, 0, -5, -1, -2, -0.5f};
  {
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_str("tokenizer.ggml.model", "llama");
    w.kv_strings("tokenizer.ggml.tokens", pieces);
    w.kv_floats("tokenizer.ggml.scores", scores);
    w.kv_u32("tokenizer.ggml.bos_token_id", 1);
    w.kv_u32("tokenizer.ggml.eos_token_id", 2);
    w.kv_u32("tokenizer.ggml.unknown_token_id", 0);
    test::write_bytes(p, w.file());
    auto tok = load_tokenizer(p);
    // No token_type array: every token is normal; "▁a" (-0.5) beats "▁"+"a".
    EXPECT_EQ(tok->encode("ab", true), (std::vector<std::int32_t>{1, 6, 5}));
    // Every truncation of it fails cleanly.
    const std::string full = w.file();
    for (std::size_t n = 0; n < full.size(); n += 7) {
      test::write_bytes(p, std::string_view(full).substr(0, n));
      expect_format_error(p, "");
    }
  }
  {
    GgufWriter w;
    w.kv_str("tokenizer.ggml.model", "gpt2");
    test::write_bytes(p, w.file());
    expect_format_error(p, "tokenizer.ggml.model");
  }
  {
    GgufWriter w;
    w.kv_str("tokenizer.ggml.model", "llama");
    w.kv_floats("tokenizer.ggml.scores", scores);
    test::write_bytes(p, w.file());
    expect_format_error(p, "tokenizer.ggml.tokens");
  }
  {
    // An array length far beyond the file must fail before any allocation.
    GgufWriter w;
    w.str("tokenizer.ggml.tokens"), w.raw<std::uint32_t>(9), w.raw<std::uint32_t>(8), w.raw<std::uint64_t>(1ull << 60);
    ++w.n_kv;
    test::write_bytes(p, w.file());
    expect_format_error(p, "tokenizer.ggml.tokens");
  }
}

// Random byte flips of valid files: each must load or throw FormatError; sanitizer builds catch any
// out-of-bounds read, and a hostile length must not allocate or hang.
void mutate_and_load(const std::string& good, const std::filesystem::path& p, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pos(0, good.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int loaded = 0, rejected = 0;
  for (int i = 0; i < 150; ++i) {
    std::string m = good;
    for (int k = 0; k < 1 + i % 3; ++k) m[pos(rng)] = static_cast<char>(byte(rng));
    test::write_bytes(p, m);
    try {
      auto tok = load_tokenizer(p);
      (void)tok->decode(tok->encode("ab ba", true));
      ++loaded;
    } catch (const FormatError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0) << p;
  EXPECT_EQ(loaded + rejected, 150);
}

TEST(TokenizerFormats, MutatedFilesFailCleanly) {
  test::TempDir dir;
  mutate_and_load(tiny_model(2, true), dir / "mut.model", 7);
  GgufWriter w;
  w.kv_str("tokenizer.ggml.model", "llama");
  w.kv_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "ab"});
  w.kv_floats("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -0.5f});
  w.kv_u32("tokenizer.ggml.bos_token_id", 1);
  mutate_and_load(w.file(), dir / "mut.gguf", 8);
}

TEST(TokenizerFormats, TruncatedRealGguf) {
  POCKETLORA_REQUIRE_DATA(gguf, "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf");
  const std::string full = test::read_text(gguf);
  test::TempDir dir;
  const auto p = dir / "cut.gguf";
  for (std::size_t n : {std::size_t{3}, std::size_t{10}, std::size_t{30}, full.size() / 3, full.size() - 1}) {
    test::write_bytes(p, std::string_view(full).substr(0, n));
    expect_format_error(p, "");
  }
}

TEST(TokenizerFormats, UnknownFormatAndMissingFile) {
  test::TempDir dir;
  test::write_bytes(dir / "junk.txt", "\xFF\xFF\xFF\xFFjunk");
  expect_format_error(dir / "junk.txt", "not a recognised tokenizer");
  test::write_bytes(dir / "empty", "");
  expect_format_error(dir / "empty", "");
  EXPECT_THROW(load_tokenizer(dir / "missing.model"), IoError);
  // A folder without a tokenizer file; with one, that file is loaded.
  std::filesystem::create_directory(dir / "model");
  EXPECT_THROW(load_tokenizer(dir / "model"), IoError);
  test::write_bytes(dir / "model" / "tokenizer.model", tiny_model());
  EXPECT_EQ(load_tokenizer(dir / "model")->vocab_size(), 9);
}

}  // namespace
}  // namespace pocketlora
