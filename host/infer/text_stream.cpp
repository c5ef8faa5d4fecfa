#include "host/infer/text_stream.h"

#include "host/tokenizer/utf8.h"

namespace pocketlora {

namespace {

// Bytes a character starting with lead byte b takes (0: b cannot start one).
std::size_t utf8_length(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 0;
}

}  // namespace

std::size_t complete_utf8_prefix(const std::string& s) {
  // Only the last up-to-3 bytes can be an unfinished character.
  for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const std::size_t i = s.size() - back;
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back for the lead
    const std::size_t len = utf8_length(b);
    return len > back ? i : s.size();
  }
  return s.size();
}

std::string sanitize_utf8(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const utf8::Char c = utf8::next(s, i);
    if (c.cp == utf8::kInvalid) utf8::append(out, 0xFFFD);
    else out.append(s, i, c.len);
    i += c.len;
  }
  return out;
}

std::string TextStream::push(std::int32_t id) {
  ids_.push_back(id);
  const std::string text = tok_.decode(ids_);
  const std::size_t end = complete_utf8_prefix(text);
  if (end <= emitted_) return {};
  std::string out = sanitize_utf8(text.substr(emitted_, end - emitted_));
  emitted_ = end;
  return out;
}

std::string TextStream::finish() {
  const std::string text = tok_.decode(ids_);
  if (text.size() <= emitted_) return {};
  std::string out = sanitize_utf8(text.substr(emitted_));
  emitted_ = text.size();
  return out;
}

}  // namespace pocketlora
