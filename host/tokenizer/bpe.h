#pragma once
// Byte-level BPE (GPT-2 family; here Llama 3) from a Hugging Face tokenizer.json: text is split by the
// Llama 3 pre-tokenizer regex, each piece's bytes are mapped through GPT-2's bytes_to_unicode alphabet, and
// adjacent symbols merge in merge-rank order. Added tokens (<|begin_of_text|> ...) are matched before
// pre-tokenization.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

struct ByteBpeVocab {
  std::string source;                 // file, for messages
  std::vector<std::string> pieces;    // id -> vocabulary string (byte-level alphabet, or added-token text)
  std::vector<bool> special;          // added token with special=true (matched only with parse_special)
  std::vector<bool> added;            // any added token (matched before pre-tokenization)
  // Merges in rank order, as vocabulary strings ("Ġ", "t").
  std::vector<std::pair<std::string, std::string>> merges;
  bool ignore_merges = false;  // a whole pre-token that is itself a vocabulary entry is emitted as is
  std::optional<std::int32_t> bos, eos;
};

std::unique_ptr<Tokenizer> make_byte_bpe_tokenizer(ByteBpeVocab vocab);

// tokenizer.json (+ tokenizer_config.json next to it for bos/eos when present).
ByteBpeVocab read_hf_tokenizer_json(const std::filesystem::path& path);

// The Llama 3 pre-tokenizer, hand-written over code points:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Appends the pieces of `text` (views into it) to `out`. Bytes that are not valid UTF-8 are single "other"
// characters, so every byte lands in exactly one piece.
void llama3_pretokenize(std::string_view text, std::vector<std::string_view>& out);
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's bytes_to_unicode: the printable code point each byte is written as in the vocabulary.
char32_t byte_to_unicode(std::uint8_t b);

}  // namespace pocketlora
