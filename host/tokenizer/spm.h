#pragma once
// SentencePiece-style BPE (Llama 1/2, TinyLlama, Mistral v0.1): score-ordered merges of adjacent symbols that
// start as single UTF-8 characters, a dummy-prefix space, spaces escaped as U+2581 "▁", and byte-fallback
// <0xXX> tokens for characters the vocabulary lacks. The same vocabulary can come from a SentencePiece
// tokenizer.model, a llama2.c tokenizer.bin or a GGUF file; all three readers produce an SpmVocab.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

// Values as in sentencepiece_model.proto (and GGUF tokenizer.ggml.token_type, which copies them).
enum class SpmTokenType : std::uint8_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct SpmVocab {
  std::string source;  // file the vocabulary came from, for error messages
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<SpmTokenType> types;
  std::optional<std::int32_t> bos, eos, unk;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;
  std::string unk_surface = " \xE2\x81\x87 ";  // what decode prints for <unk> (SentencePiece's " ⁇ ")
};

// Validates sizes and ids (FormatError naming vocab.source) and builds the tokenizer.
std::unique_ptr<Tokenizer> make_spm_tokenizer(SpmVocab vocab);

// Readers; each throws FormatError naming the file and the field when the contents are malformed.
SpmVocab read_sentencepiece_model(const std::filesystem::path& path);  // SentencePiece tokenizer.model
SpmVocab read_llama2c_tokenizer(const std::filesystem::path& path);    // llama2.c tokenizer.bin
SpmVocab read_gguf_spm_vocab(const std::filesystem::path& path);        // GGUF tokenizer.ggml.* (model "llama")

}  // namespace pocketlora
