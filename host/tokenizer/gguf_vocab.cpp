// Vocabulary from a GGUF file's tokenizer.ggml.* metadata (llama.cpp's names: tokens, scores, token_type,
// bos/eos/unknown_token_id, add_space_prefix), read through GgufFile. tokenizer.ggml.model "llama" is
// SentencePiece BPE; other models are refused.
#include <fmt/format.h>

#include "host/core/error.h"
#include "host/formats/gguf.h"
#include "host/tokenizer/spm.h"

namespace pocketlora {

SpmVocab read_gguf_spm_vocab(const std::filesystem::path& path) {
  const GgufFile g = GgufFile::open(path);
  SpmVocab v;
  v.source = path.string();
  auto bad = [&](std::string_view key, std::string_view what) {
    throw FormatError(fmt::format("{}: GGUF metadata {}: {}", v.source, key, what));
  };
  if (!g.has("tokenizer.ggml.model")) bad("tokenizer.ggml.model", "missing (the file has no tokenizer)");
  const std::string model = g.get_string("tokenizer.ggml.model");
  if (model != "llama")
    bad("tokenizer.ggml.model", fmt::format("'{}' (only 'llama' = SentencePiece BPE is supported from GGUF; use "
                                            "tokenizer.json for byte-level BPE)", model));
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores"})
    if (!g.has(key)) bad(key, "missing");
  v.pieces = g.get_string_array("tokenizer.ggml.tokens");
  v.scores = g.get_float_array("tokenizer.ggml.scores");
  if (g.has("tokenizer.ggml.token_type")) {
    const auto types = g.get_int_array("tokenizer.ggml.token_type");
    v.types.resize(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) {
      // llama.cpp's type 0 is "undefined"; treat it as normal.
      if (types[i] < 0 || types[i] > 6)
        bad("tokenizer.ggml.token_type", fmt::format("token {} has type {} (expected 0..6)", i, types[i]));
      v.types[i] = types[i] == 0 ? SpmTokenType::Normal : static_cast<SpmTokenType>(types[i]);
    }
  } else {
    v.types.assign(v.pieces.size(), SpmTokenType::Normal);
  }
  // llama.cpp writes 0xFFFFFFFF (or -1) for "no such token".
  auto id = [&](const char* key) -> std::optional<std::int32_t> {
    if (!g.has(key)) return std::nullopt;
    const std::int64_t x = g.get_int(key);
    if (x < 0 || x > INT32_MAX) return std::nullopt;
    return static_cast<std::int32_t>(x);
  };
  v.bos = id("tokenizer.ggml.bos_token_id");
  v.eos = id("tokenizer.ggml.eos_token_id");
  v.unk = id("tokenizer.ggml.unknown_token_id");
  if (g.has("tokenizer.ggml.add_space_prefix")) v.add_dummy_prefix = g.get_bool("tokenizer.ggml.add_space_prefix");
  v.byte_fallback = true;
  v.remove_extra_whitespaces = false;
  return v;
}

}  // namespace pocketlora
