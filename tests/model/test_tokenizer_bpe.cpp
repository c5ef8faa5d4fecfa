// Byte-level BPE: the real Llama 3 tokenizer.json against its published ids, the pre-tokenizer on hand-worked
// splits, merge order on a hand-built vocabulary, round trips on random (and invalid) UTF-8, and bad files.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/tokenizer/bpe.h"
#include "host/tokenizer/tokenizer.h"
#include "tests/common/test_data.h"
#include "tests/model/test_tokenizer_util.h"

namespace pocketlora {
namespace {

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string_view> v;
  llama3_pretokenize(s, v);
  return {v.begin(), v.end()};
}

using Strs = std::vector<std::string>;

TEST(TokenizerBpe, PretokenizerHandWorkedSplits) {
  EXPECT_EQ(split("Hello world"), (Strs{"Hello", " world"}));
  EXPECT_EQ(split("  a"), (Strs{" ", " a"}));                  // \s+(?!\S) leaves the last space to " a"
  EXPECT_EQ(split("abc1234567"), (Strs{"abc", "123", "456", "7"}));
  EXPECT_EQ(split("I'm HE'LL they're"), (Strs{"I", "'m", " HE", "'LL", " they", "'re"}));
  EXPECT_EQ(split("\n\n  x"), (Strs{"\n\n", " ", " x"}));
  EXPECT_EQ(split("a  \n b"), (Strs{"a", "  \n", " b"}));      // \s*[\r\n]+ ends at the last newline
  EXPECT_EQ(split("x !!\n\ny"), (Strs{"x", " !!\n\n", "y"}));   // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  EXPECT_EQ(split(" 1"), (Strs{" ", "1"}));                     // a lone space before a digit: \s+
  EXPECT_EQ(split("end   "), (Strs{"end", "   "}));             // trailing run kept whole
  EXPECT_EQ(split("'x"), (Strs{"'x"}));                         // [^\r\n\p{L}\p{N}]?\p{L}+
  EXPECT_EQ(split("\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"), (Strs{"\xC3\xA9t\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));
  EXPECT_EQ(split("\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6"), (Strs{"\xD9\xA3\xD9\xA4\xD9\xA5", "\xD9\xA6"}));  // Arabic-Indic digits are \p{N}
  EXPECT_EQ(split("a\xFF" "b"), (Strs{"a", "\xFF" "b"}));       // a stray byte is a non-letter character
}

TEST(TokenizerBpe, ByteAlphabetIsGpt2s) {
  EXPECT_EQ(byte_to_unicode('!'), U'!');
  EXPECT_EQ(byte_to_unicode(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(byte_to_unicode('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(byte_to_unicode(0xAD), U'\u0143');  // soft hyphen -> 'Ń'
  EXPECT_EQ(byte_to_unicode(0xFF), U'\u00FF');
}

TEST(TokenizerBpe, Llama3MatchesPublishedIds) {
  POCKETLORA_REQUIRE_DATA(path, "tokenizers/llama3/tokenizer.json");
  POCKETLORA_REQUIRE_DATA(expected, "tokenizers/expected/llama3_bpe_sample.json");
  auto tok = load_tokenizer(path);
  EXPECT_EQ(tok->kind(), TokenizerKind::ByteLevelBpe);
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eos_id(), 128001);
  EXPECT_EQ(tok->token_to_id("<|eot_id|>"), 128009);
  EXPECT_EQ(tok->piece(22691), "\xC4\xA0Hello");
  const auto j = test::read_json(expected);
  ASSERT_EQ(j["cases"].size(), 20u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<std::int32_t>>();
    EXPECT_EQ(tok->encode(text, false), want) << "'" << text << "'";
    EXPECT_EQ(tok->decode(want), text);
  }
  // Special tokens: only with parse_special; decode gives them no text.
  const auto chat = tok->encode("<|start_header_id|>user<|end_header_id|>", true, true);
  EXPECT_EQ(chat, (std::vector<std::int32_t>{128000, 128006, 882, 128007}));
  const auto plain = tok->encode("<|start_header_id|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok->decode(plain), "<|start_header_id|>");
  EXPECT_EQ(tok->decode(chat), "user");
}

TEST(TokenizerBpe, Llama3RoundTripsRandomAndInvalidUtf8) {
  POCKETLORA_REQUIRE_DATA(path, "tokenizers/llama3/tokenizer.json");
  auto tok = load_tokenizer(path);
  std::mt19937 rng(99);
  for (int i = 0; i < 400; ++i) {
    const std::string s = test::random_unicode(rng, 60);
    const auto ids = tok->encode(s, false);
    ASSERT_EQ(tok->decode(ids), s) << "case " << i;
  }
  // Invalid UTF-8 is kept byte for byte (documented in docs/TOKENIZERS.md).
  std::uniform_int_distribution<int> byte(0, 255), len(0, 30);
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int k = len(rng); k > 0; --k) s += static_cast<char>(byte(rng));
    ASSERT_EQ(tok->decode(tok->encode(s, false)), s) << "raw case " << i;
  }
}

// A tiny tokenizer.json: the 256 byte symbols as ids 0..255, then `extra` tokens and `merges`.
nlohmann::json tiny_json(const std::vector<std::string>& extra, const std::vector<std::string>& merges, bool ignore_merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (unsigned b = 0; b < 256; ++b) {
    std::string s;
    utf8::append(s, byte_to_unicode(static_cast<std::uint8_t>(b)));
    vocab[s] = b;
  }
  for (std::size_t k = 0; k < extra.size(); ++k) vocab[extra[k]] = 256 + k;
  nlohmann::json j;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(kLlama3Pattern)}}}, {"behavior", "Isolated"}, {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", ignore_merges}};
  j["added_tokens"] = {{{"id", 256 + extra.size()}, {"content", "<|x|>"}, {"special", true}}};
  return j;
}

TEST(TokenizerBpe, MergeRankOrderHandBuilt) {
  test::TempDir dir;
  const auto p = dir / "tokenizer.json";
  // ranks: a+b=0, ab+c=1, b+c=2 -> "abc": ab first, then abc.
  test::write_bytes(p, tiny_json({"ab", "abc", "bc"}, {"a b", "ab c", "b c"}, false).dump());
  auto t1 = load_tokenizer(p);
  EXPECT_EQ(t1->encode("abc", false), (std::vector<std::int32_t>{257}));
  // ranks: b+c=0 first -> [a, bc]; "a bc" is no merge.
  test::write_bytes(p, tiny_json({"ab", "abc", "bc"}, {"b c", "a b", "ab c"}, false).dump());
  auto t2 = load_tokenizer(p);
  EXPECT_EQ(t2->encode("abc", false), (std::vector<std::int32_t>{'a', 258}));
  // ignore_merges: a pre-token that is a vocabulary entry is taken whole even without a merge path.
  test::write_bytes(p, tiny_json({"abc"}, {}, true).dump());
  EXPECT_EQ(load_tokenizer(p)->encode("abc", false), (std::vector<std::int32_t>{256}));
  test::write_bytes(p, tiny_json({"abc"}, {}, false).dump());
  EXPECT_EQ(load_tokenizer(p)->encode("abc", false).size(), 3u);
  // Leftmost first among equal ranks: "aaa" with a+a -> [aa, a].
  test::write_bytes(p, tiny_json({"aa"}, {"a a"}, false).dump());
  auto t3 = load_tokenizer(p);
  const std::int32_t a = *t3->token_to_id("a");
  EXPECT_EQ(t3->encode("aaa", false), (std::vector<std::int32_t>{256, a}));
  EXPECT_EQ(t3->encode("x<|x|>", false, true).back(), 257);
  EXPECT_FALSE(t3->bos_id().has_value());
}

void expect_format_error(const std::filesystem::path& p, const std::string& hint,
                         const std::filesystem::path& named = {}) {
  try {
    load_tokenizer(p);
    ADD_FAILURE() << "loaded; expected an error mentioning " << hint;
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((named.empty() ? p : named).string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(hint), std::string::npos) << msg;
  }
}

TEST(TokenizerBpe, BadTokenizerJson) {
  test::TempDir dir;
  const auto p = dir / "tokenizer.json";
  const nlohmann::json good = tiny_json({"ab"}, {"a b"}, false);
  const std::string text = good.dump();
  test::write_bytes(p, text.substr(0, text.size() / 2));
  expect_format_error(p, "invalid JSON");
  test::write_bytes(p, "{\"model\": [1, 2,}");
  expect_format_error(p, "invalid JSON");
  {
    auto j = good;
    j["model"].erase("vocab");
    test::write_bytes(p, j.dump());
    expect_format_error(p, "model.vocab");
  }
  {
    auto j = good;
    j["model"].erase("merges");
    test::write_bytes(p, j.dump());
    expect_format_error(p, "model.merges");
  }
  {
    auto j = good;
    j["model"]["vocab"].erase("q");
    j["model"]["vocab"]["zz"] = 'q';  // ids stay dense; the byte symbol for 'q' is gone
    test::write_bytes(p, j.dump());
    expect_format_error(p, "byte 0x71");
  }
  {
    auto j = good;
    j["model"]["merges"] = {"a b c"};
    test::write_bytes(p, j.dump());
    expect_format_error(p, "model.merges[0]");
  }
  {
    auto j = good;
    j["model"]["merges"] = {"ab ab"};
    test::write_bytes(p, j.dump());
    expect_format_error(p, "model.merges[0]");
  }
  {
    auto j = good;
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+";
    test::write_bytes(p, j.dump());
    expect_format_error(p, "pre_tokenizer");
  }
  {
    auto j = good;
    j["added_tokens"][0].erase("id");
    test::write_bytes(p, j.dump());
    expect_format_error(p, "added_tokens[0].id");
  }
  {
    auto j = good;
    j["added_tokens"][0]["id"] = 100000;
    test::write_bytes(p, j.dump());
    expect_format_error(p, "added_tokens[0].id");
  }
  {
    auto j = good;
    j["model"]["type"] = "Unigram";
    test::write_bytes(p, j.dump());
    expect_format_error(p, "model.type");
  }
  {
    test::write_bytes(p, good.dump());
    test::write_bytes(dir / "tokenizer_config.json", R"({"bos_token": "<|nope|>"})");
    expect_format_error(p, "bos_token", dir / "tokenizer_config.json");
    test::write_bytes(dir / "tokenizer_config.json", R"({"bos_token": )");
    expect_format_error(p, "invalid JSON", dir / "tokenizer_config.json");
    test::write_bytes(dir / "tokenizer_config.json", R"({"bos_token": {"content": "<|x|>"}})");
    EXPECT_EQ(load_tokenizer(p)->bos_id(), 257);
  }
}

}  // namespace
}  // namespace pocketlora
