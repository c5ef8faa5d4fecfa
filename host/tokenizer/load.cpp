// load_tokenizer: picks the reader from the file's first bytes (the extension is only used in messages).
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/tokenizer/bpe.h"
#include "host/tokenizer/spm.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path) {
  // A model folder (Hugging Face layout): the tokenizer file inside it.
  if (std::filesystem::is_directory(path)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"})
      if (std::filesystem::is_regular_file(path / name)) return load_tokenizer(path / name);
    throw IoError(fmt::format("{}: folder has no tokenizer.json, tokenizer.model or tokenizer.bin", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open tokenizer file", path.string()));
  char head[16] = {};
  in.read(head, sizeof head);
  const auto got = static_cast<std::size_t>(in.gcount());

  if (got >= 4 && std::memcmp(head, "GGUF", 4) == 0) return make_spm_tokenizer(read_gguf_spm_vocab(path));
  std::size_t first = 0;  // first non-whitespace byte, for JSON
  while (first < got && (head[first] == ' ' || head[first] == '\t' || head[first] == '\r' || head[first] == '\n')) ++first;
  if (first < got && head[first] == '{') return make_byte_bpe_tokenizer(read_hf_tokenizer_json(path));
  if (got >= 4) {
    std::int32_t max_len;
    std::memcpy(&max_len, head, 4);
    // llama2.c header: a small positive max_token_length. A tokenizer.model starts with the tag byte 0x0A
    // and a length, which read as an int32 is far larger.
    if (max_len > 0 && max_len <= 4096) return make_spm_tokenizer(read_llama2c_tokenizer(path));
    if (static_cast<unsigned char>(head[0]) == 0x0A) return make_spm_tokenizer(read_sentencepiece_model(path));
  }
  throw FormatError(fmt::format(
      "{}: not a recognised tokenizer (expected GGUF, Hugging Face tokenizer.json, SentencePiece tokenizer.model "
      "or llama2.c tokenizer.bin; file starts with {} bytes that match none)",
      path.string(), got));
}

const char* tokenizer_kind_name(TokenizerKind k) {
  switch (k) {
    case TokenizerKind::SentencePieceBpe: return "spm-bpe";
    case TokenizerKind::ByteLevelBpe: return "byte-bpe";
  }
  return "unknown";
}

}  // namespace pocketlora
