// The Llama 3 split regex as a matcher over code points. Alternatives are tried in order at each position, as
// a backtracking regex engine does; the comments give the regex branch and how its backtracking resolves.
#include <vector>

#include "host/tokenizer/bpe.h"
#include "host/tokenizer/unicode.h"
#include "host/tokenizer/utf8.h"

namespace pocketlora {
namespace {

using unicode::kIsLetter;
using unicode::kIsNumber;
using unicode::kIsSpace;

struct Cps {
  std::vector<char32_t> cp;
  std::vector<std::uint8_t> cls;
  std::vector<std::size_t> off;  // byte offset of each code point, plus the end
};

char32_t ascii_lower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// End (code-point index) of the match starting at i.
std::size_t match_at(const Cps& t, std::size_t i) {
  const std::size_t n = t.cp.size();
  auto cls = [&](std::size_t k) -> std::uint8_t { return k < n ? t.cls[k] : 0; };
  auto is_crlf = [&](std::size_t k) { return k < n && (t.cp[k] == '\r' || t.cp[k] == '\n'); };
  auto is_l = [&](std::size_t k) { return (cls(k) & kIsLetter) != 0; };
  auto is_n = [&](std::size_t k) { return (cls(k) & kIsNumber) != 0; };
  auto is_s = [&](std::size_t k) { return (cls(k) & kIsSpace) != 0; };
  auto is_other = [&](std::size_t k) { return k < n && (t.cls[k] & (kIsLetter | kIsNumber | kIsSpace)) == 0; };

  // (?i:'s|'t|'re|'ve|'m|'ll|'d) — ASCII case folding only (as llama.cpp; see docs/TOKENIZERS.md).
  if (t.cp[i] == '\'' && i + 1 < n) {
    const char32_t a = ascii_lower(t.cp[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      const char32_t b = ascii_lower(t.cp[i + 2]);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    std::size_t j = i;
    if (!is_crlf(j) && !is_l(j) && !is_n(j) && is_l(j + 1)) ++j;
    if (is_l(j)) {
      while (is_l(j)) ++j;
      return j;
    }
  }
  // \p{N}{1,3}
  if (is_n(i)) {
    std::size_t j = i;
    while (j < i + 3 && is_n(j)) ++j;
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*' — without the space the class cannot start on a space, so no other split.
  {
    std::size_t j = i + (t.cp[i] == ' ' ? 1 : 0);
    if (is_other(j)) {
      while (is_other(j)) ++j;
      while (is_crlf(j)) ++j;
      return j;
    }
  }
  if (is_s(i)) {
    std::size_t e = i;
    while (is_s(e)) ++e;
    // \s*[\r\n]+ — \s* backs off to the last CR/LF of the whitespace run.
    for (std::size_t k = e; k > i; --k)
      if (is_crlf(k - 1)) return k;
    // \s+(?!\S) — the whole run at the end of text, else the run minus its last space (if that leaves one).
    if (e == n) return e;
    if (e - i >= 2) return e - 1;
    // \s+
    return e;
  }
  return i + 1;  // unreachable: every code point is a letter, number, space or "other"
}

}  // namespace

void llama3_pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  thread_local Cps t;
  t.cp.clear();
  t.cls.clear();
  t.off.clear();
  for (std::size_t i = 0; i < text.size();) {
    const utf8::Char c = utf8::next(text, i);
    t.cp.push_back(c.cp);
    t.cls.push_back(c.cp == utf8::kInvalid ? 0 : unicode::classify(c.cp));
    t.off.push_back(i);
    i += c.len;
  }
  t.off.push_back(text.size());
  for (std::size_t i = 0; i < t.cp.size();) {
    const std::size_t j = match_at(t, i);
    out.push_back(text.substr(t.off[i], t.off[j] - t.off[i]));
    i = j;
  }
}

char32_t byte_to_unicode(std::uint8_t b) {
  // Printable Latin-1 bytes stand for themselves; the other 68 bytes are numbered from U+0100 in byte order.
  auto printable = [](unsigned x) { return (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE); };
  if (printable(b)) return b;
  char32_t n = 0;
  for (unsigned x = 0; x < b; ++x)
    if (!printable(x)) ++n;
  return 0x100 + n;
}

}  // namespace pocketlora
