#pragma once
// UTF-8 helpers shared by the tokenizers. Invalid input is never rejected here: a byte that does not start a
// well-formed sequence is reported as a one-byte "character" so callers can keep it verbatim (byte fallback in
// SentencePiece, the byte alphabet in byte-level BPE) and decode(encode(s)) stays lossless.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pocketlora::utf8 {

inline constexpr char32_t kInvalid = 0xFFFFFFFFu;

// Length and code point of the character starting at s[i] (i < s.size()). Malformed, overlong, surrogate or
// truncated sequences give {1, kInvalid}.
struct Char {
  std::size_t len;
  char32_t cp;
};

inline Char next(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {1, b0};
  std::size_t len;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {1, kInvalid};
  }
  if (i + len > s.size()) return {1, kInvalid};
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {1, kInvalid};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {1, kInvalid};
  return {len, cp};
}

inline void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline bool valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const Char c = next(s, i);
    if (c.cp == kInvalid) return false;
    i += c.len;
  }
  return true;
}

}  // namespace pocketlora::utf8
