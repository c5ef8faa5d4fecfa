#pragma once
// Unicode character classes needed by the Llama 3 pre-tokenizer regex: \p{L}, \p{N} and \s. Letter and
// number ranges are generated data (unicode_tables.cpp); whitespace is the White_Space property
// that Oniguruma (used by Hugging Face tokenizers) gives \s.
#include <cstddef>
#include <cstdint>

namespace pocketlora::unicode {

struct CodeRange {
  char32_t first, last;
};

extern const CodeRange kLetter[];
extern const std::size_t kLetterCount;
extern const CodeRange kNumber[];
extern const std::size_t kNumberCount;

enum : std::uint8_t { kIsLetter = 1, kIsNumber = 2, kIsSpace = 4 };

// Class bits of one code point; 0 for anything else, including utf8::kInvalid (a stray byte).
std::uint8_t classify(char32_t cp);

}  // namespace pocketlora::unicode
