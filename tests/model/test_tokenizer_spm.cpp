// SentencePiece BPE against real fixtures: llama.cpp's 46 Llama 2 vocab cases, Meta's prompts, tok512.
#include <gtest/gtest.h>

#include <random>

#include "host/core/error.h"
#include "host/tokenizer/spm.h"
#include "host/tokenizer/tokenizer.h"
#include "tests/common/test_data.h"
#include "tests/model/test_tokenizer_util.h"

namespace pocketlora {
namespace {

using test::read_ggml_vocab_cases;

void expect_vocab_cases(const Tokenizer& tok, const std::filesystem::path& inp) {
  const auto cases = read_ggml_vocab_cases(inp);
  ASSERT_EQ(cases.size(), 46u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    EXPECT_EQ(tok.encode(c.text, false), c.ids) << "case " << i << ": '" << c.text << "'";
    EXPECT_EQ(tok.decode(c.ids), c.text) << "case " << i;
  }
}

TEST(TokenizerSpm, Llama2ModelMatchesLlamaCppVocabCases) {
  POCKETLORA_REQUIRE_DATA(model, "tokenizers/llama2/tokenizer.model");
  POCKETLORA_REQUIRE_DATA(inp, "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf.inp");
  auto tok = load_tokenizer(model);
  EXPECT_EQ(tok->kind(), TokenizerKind::SentencePieceBpe);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->piece(29871), "\xE2\x96\x81");
  EXPECT_EQ(tok->token_to_id("<0x0A>"), 13);
  expect_vocab_cases(*tok, inp);
}

TEST(TokenizerSpm, Llama2cBinMatchesLlamaCppVocabCases) {
  POCKETLORA_REQUIRE_DATA(bin, "tokenizers/llama2/tokenizer.bin");
  POCKETLORA_REQUIRE_DATA(inp, "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf.inp");
  auto tok = load_tokenizer(bin);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->piece(1), "<s>");
  EXPECT_EQ(tok->piece(278), "\xE2\x96\x81the");
  expect_vocab_cases(*tok, inp);
}

TEST(TokenizerSpm, GgufVocabMatchesLlamaCppVocabCases) {
  POCKETLORA_REQUIRE_DATA(gguf, "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf");
  POCKETLORA_REQUIRE_DATA(inp, "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf.inp");
  auto tok = load_tokenizer(gguf);
  EXPECT_EQ(tok->kind(), TokenizerKind::SentencePieceBpe);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  expect_vocab_cases(*tok, inp);
}

TEST(TokenizerSpm, GgufModelsCarryTheirVocabularies) {
  POCKETLORA_REQUIRE_DATA(tiny, "models/llama-2-tiny-random/llama-2-tiny-random.gguf");
  POCKETLORA_REQUIRE_DATA(stories, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(prompts, "tokenizers/expected/llama2_prompt_ids.json");
  POCKETLORA_REQUIRE_DATA(tok512, "tokenizers/expected/tok512_ids.json");
  auto llama = load_tokenizer(tiny);
  const auto prompt_cases = test::read_json(prompts);
  for (const auto& c : prompt_cases["cases"])
    EXPECT_EQ(llama->encode(c["text"].get<std::string>(), true), c["ids_with_bos"].get<std::vector<std::int32_t>>());
  auto small = load_tokenizer(stories);
  EXPECT_EQ(small->vocab_size(), 512);
  const auto tok512_cases = test::read_json(tok512);
  for (const auto& c : tok512_cases)
    EXPECT_EQ(small->encode(c["text"].get<std::string>(), true), c["ids_with_bos"].get<std::vector<std::int32_t>>());
}

TEST(TokenizerSpm, Llama2PromptsWithBos) {
  POCKETLORA_REQUIRE_DATA(model, "tokenizers/llama2/tokenizer.model");
  POCKETLORA_REQUIRE_DATA(bin, "tokenizers/llama2/tokenizer.bin");
  POCKETLORA_REQUIRE_DATA(expected, "tokenizers/expected/llama2_prompt_ids.json");
  const auto j = test::read_json(expected);
  ASSERT_GE(j["cases"].size(), 3u);
  for (const auto& path : {model, bin}) {
    auto tok = load_tokenizer(path);
    for (const auto& c : j["cases"]) {
      const std::string text = c["text"];
      const auto want = c["ids_with_bos"].get<std::vector<std::int32_t>>();
      const auto got = tok->encode(text, true);
      EXPECT_EQ(got, want) << path << ": '" << text << "'";
      EXPECT_EQ(tok->decode(got), text);
    }
  }
}

TEST(TokenizerSpm, Tok512MatchesLlama2cEncoder) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/tok512.bin");
  POCKETLORA_REQUIRE_DATA(expected, "tokenizers/expected/tok512_ids.json");
  auto tok = load_tokenizer(bin);
  EXPECT_EQ(tok->vocab_size(), 512);
  const auto j = test::read_json(expected);
  ASSERT_EQ(j.size(), 5u);
  for (const auto& c : j) {
    const std::string text = c["text"];
    const auto want = c["ids_with_bos"].get<std::vector<std::int32_t>>();
    EXPECT_EQ(tok->encode(text, true), want) << "'" << text << "'";
    EXPECT_EQ(tok->decode(want), text);
  }
}

TEST(TokenizerSpm, RoundTripsRandomUnicode) {
  POCKETLORA_REQUIRE_DATA(model, "tokenizers/llama2/tokenizer.model");
  POCKETLORA_REQUIRE_DATA(tok512, "models/stories260K/tok512.bin");
  for (const auto& path : {model, tok512}) {
    auto tok = load_tokenizer(path);
    std::mt19937 rng(1234);
    for (int i = 0; i < 300; ++i) {
      const std::string s = test::random_unicode(rng, 40);
      const auto ids = tok->encode(s, i % 2 == 0);
      for (auto id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size());
      ASSERT_EQ(tok->decode(ids), s) << path << " case " << i;
    }
    // Invalid UTF-8: each stray byte is a symbol of its own and comes back through its <0xXX> piece.
    std::uniform_int_distribution<int> byte(0, 255), len(0, 30);
    for (int i = 0; i < 200; ++i) {
      std::string s;
      for (int k = len(rng); k > 0; --k) s += static_cast<char>(byte(rng));
      ASSERT_EQ(tok->decode(tok->encode(s, false)), s) << path << " raw case " << i;
    }
  }
}

TEST(TokenizerSpm, ByteFallbackAndSpecials) {
  POCKETLORA_REQUIRE_DATA(model, "tokenizers/llama2/tokenizer.model");
  auto tok = load_tokenizer(model);
  // U+1F9D1 is not a Llama 2 piece: dummy prefix "▁" (29871) then its four UTF-8 bytes as <0xXX> (id = byte+3).
  const std::vector<std::int32_t> want = {29871, 0xF0 + 3, 0x9F + 3, 0xA7 + 3, 0x91 + 3};
  EXPECT_EQ(tok->encode("\xF0\x9F\xA7\x91", false), want);
  // "<s>" in user text is plain text; with parse_special it is BOS, and the following text gets its own
  // dummy prefix.
  const auto plain = tok->encode("<s>hi", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  const auto special = tok->encode("<s>hi", false, true);
  ASSERT_FALSE(special.empty());
  EXPECT_EQ(special[0], 1);
  EXPECT_EQ(std::vector<std::int32_t>(special.begin() + 1, special.end()), tok->encode("hi", false));
  // Control tokens have no text; an out-of-range id is an error.
  EXPECT_EQ(tok->decode(std::vector<std::int32_t>{1, 2}), "");
  EXPECT_THROW(tok->decode(std::vector<std::int32_t>{32000}), InvalidArgument);
  EXPECT_THROW(tok->piece(-1), InvalidArgument);
}

}  // namespace
}  // namespace pocketlora
