// llama2.c tokenizer.bin reader: int32 max_token_length, then per token {float score, int32 len, len bytes}
// until the end of the file (the token count lives in the model header, not here). llama2.c's exporter wrote
// "▁" as a plain space and BOS/EOS as "\n<s>\n" / "\n</s>\n"; both are undone so pieces match SentencePiece.
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/tokenizer/spm.h"
#include "host/util/mapped_file.h"

namespace pocketlora {

SpmVocab read_llama2c_tokenizer(const std::filesystem::path& path) {
  MappedFile file(path);
  SpmVocab v;
  v.source = path.string();
  const std::uint8_t* p = file.data();
  const std::size_t n = file.size();
  auto read_i32 = [&](std::size_t at) {
    std::int32_t x;
    std::memcpy(&x, p + at, 4);
    return x;
  };
  if (n < 4) throw FormatError(fmt::format("{}: llama2.c tokenizer: truncated header max_token_length ({} bytes)", v.source, n));
  const std::int32_t max_len = read_i32(0);
  if (max_len <= 0 || max_len > 4096)
    throw FormatError(fmt::format("{}: llama2.c tokenizer: max_token_length {} (expected 1..4096)", v.source, max_len));
  std::size_t at = 4;
  while (at < n) {
    const std::size_t id = v.pieces.size();
    if (n - at < 8)
      throw FormatError(fmt::format("{}: llama2.c tokenizer: token {} truncated in score/len at byte {}", v.source, id, at));
    float score;
    std::memcpy(&score, p + at, 4);
    const std::int32_t len = read_i32(at + 4);
    at += 8;
    if (len < 0 || len > max_len)
      throw FormatError(fmt::format("{}: llama2.c tokenizer: token {} len {} (expected 0..max_token_length {})", v.source,
                                    id, len, max_len));
    if (static_cast<std::size_t>(len) > n - at)
      throw FormatError(fmt::format("{}: llama2.c tokenizer: token {} bytes truncated ({} needed, {} left)", v.source, id,
                                    len, n - at));
    std::string s(reinterpret_cast<const char*>(p + at), static_cast<std::size_t>(len));
    at += static_cast<std::size_t>(len);
    SpmTokenType type = SpmTokenType::Normal;
    unsigned byte = 0;
    char tail = 0;
    if (s == "\n<s>\n" || s == "\n</s>\n") {
      s = s.substr(1, s.size() - 2);
      type = SpmTokenType::Control;
    } else if (s == "<unk>") {
      type = SpmTokenType::Unknown;
    } else if (s.size() == 6 && std::sscanf(s.c_str(), "<0x%2X%c", &byte, &tail) == 2 && tail == '>') {
      type = SpmTokenType::Byte;
    } else {
      std::string e;
      for (char c : s) e += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
      s = std::move(e);
    }
    v.pieces.push_back(std::move(s));
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  if (v.pieces.empty()) throw FormatError(fmt::format("{}: llama2.c tokenizer: no tokens after the header", v.source));
  // llama2.c hard-codes these ids (run.c: BOS 1, EOS 2); check they are what the exporter wrote.
  auto id_of = [&](std::string_view s) -> std::optional<std::int32_t> {
    for (std::size_t i = 0; i < v.pieces.size() && i < 8; ++i)
      if (v.pieces[i] == s) return static_cast<std::int32_t>(i);
    return std::nullopt;
  };
  v.unk = id_of("<unk>");
  v.bos = id_of("<s>");
  v.eos = id_of("</s>");
  v.byte_fallback = true;
  v.add_dummy_prefix = true;
  v.remove_extra_whitespaces = false;
  return v;
}

}  // namespace pocketlora
