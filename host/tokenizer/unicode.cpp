// Code-point classification: a flat table for the Basic Multilingual Plane (hot path: nearly all text),
// binary search over the generated ranges above it.
#include <algorithm>
#include <array>

#include "host/tokenizer/unicode.h"

namespace pocketlora::unicode {
namespace {

bool in_ranges(const CodeRange* r, std::size_t n, char32_t cp) {
  const CodeRange* end = r + n;
  const CodeRange* it = std::upper_bound(r, end, cp, [](char32_t c, const CodeRange& x) { return c < x.first; });
  return it != r && cp <= (it - 1)->last;
}

bool is_white_space(char32_t cp) {
  // Unicode White_Space property (PropList.txt), unchanged since Unicode 6.3.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::uint8_t slow_classify(char32_t cp) {
  std::uint8_t f = 0;
  if (in_ranges(kLetter, kLetterCount, cp)) f |= kIsLetter;
  if (in_ranges(kNumber, kNumberCount, cp)) f |= kIsNumber;
  if (is_white_space(cp)) f |= kIsSpace;
  return f;
}

const std::array<std::uint8_t, 0x10000>& bmp_table() {
  static const auto table = [] {
    std::array<std::uint8_t, 0x10000> t{};
    for (char32_t cp = 0; cp < 0x10000; ++cp) t[cp] = slow_classify(cp);
    return t;
  }();
  return table;
}

}  // namespace

std::uint8_t classify(char32_t cp) {
  if (cp < 0x10000) return bmp_table()[cp];
  if (cp > 0x10FFFF) return 0;
  return slow_classify(cp);
}

}  // namespace pocketlora::unicode
