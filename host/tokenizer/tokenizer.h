#pragma once
// One interface for every tokenizer the project reads (SentencePiece-style BPE from GGUF / llama2.c
// tokenizer.bin / tokenizer.model, byte-level BPE from Hugging Face tokenizer.json). The data pipeline and the
// generator only ever see this.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pocketlora {

// SentencePiece BPE (Llama 1/2: tokenizer.model, llama2.c tokenizer.bin, GGUF "llama") or byte-level BPE
// (GPT-2 style, Llama 3: tokenizer.json, GGUF "gpt2").
enum class TokenizerKind { SentencePieceBpe, ByteLevelBpe };
const char* tokenizer_kind_name(TokenizerKind k);  // "spm-bpe", "byte-bpe" (CLI / JSON output)

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text`; BOS prepended when add_bos and the vocabulary has one. Never appends EOS.
  // Special-token strings in `text` (e.g. "<|eot_id|>") are encoded as their special ids only when
  // parse_special is true (chat templates); user text is encoded with parse_special = false.
  virtual std::vector<std::int32_t> encode(std::string_view text, bool add_bos, bool parse_special = false) const = 0;
  // Text of a sequence of ids (byte-fallback and byte-level tokens reassembled into UTF-8).
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
  // The vocabulary's own string for one id (as stored, e.g. "▁the" or "Ġthe").
  virtual std::string piece(std::int32_t id) const = 0;
  virtual std::int32_t vocab_size() const = 0;
  virtual std::optional<std::int32_t> bos_id() const = 0;
  virtual std::optional<std::int32_t> eos_id() const = 0;
  // Id of an exact vocabulary entry (special tokens such as "<|start_header_id|>", "[INST]"), if present.
  virtual std::optional<std::int32_t> token_to_id(std::string_view piece) const = 0;
  // Which algorithm this is.
  virtual TokenizerKind kind() const = 0;
};

// Detects the format from the file (GGUF, llama2.c tokenizer.bin, SentencePiece tokenizer.model, HF
// tokenizer.json) and loads it; errors name the file and what was expected. A folder is searched for
// tokenizer.json, tokenizer.model, tokenizer.bin (in that order).
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

}  // namespace pocketlora
