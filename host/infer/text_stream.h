#pragma once
// Generated tokens to text as they come: each push returns the new text, always valid UTF-8. A character whose
// bytes span several tokens (byte-fallback pieces) is held back until complete; bytes that cannot become valid
// UTF-8 come out as U+FFFD. Decoding the tokens together (not piece by piece) keeps the tokenizer's own rules
// (SentencePiece drops the leading space of the first piece).
#include <cstdint>
#include <string>
#include <vector>

#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

class TextStream {
 public:
  explicit TextStream(const Tokenizer& tok) : tok_(tok) {}
  std::string push(std::int32_t id);
  // What is still held back (an incomplete character at the end), as U+FFFD.
  std::string finish();

 private:
  const Tokenizer& tok_;
  std::vector<std::int32_t> ids_;
  std::size_t emitted_ = 0;  // bytes of decode(ids_) already returned
};

// The longest prefix of s that does not end inside a character that more bytes could still complete.
std::size_t complete_utf8_prefix(const std::string& s);
// s with every byte that is not part of a well-formed character replaced by U+FFFD.
std::string sanitize_utf8(const std::string& s);

}  // namespace pocketlora
