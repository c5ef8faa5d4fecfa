#pragma once
// Generation: prefill the prompt through the decoder's KV cache in one program, then decode one token at a time,
// sampling each next token, until EOS or max_tokens. Timings of the two phases are kept apart (tokens/s of prompt
// processing and of decoding are different numbers).
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "host/infer/decoder.h"
#include "host/infer/sampler.h"

namespace pocketlora {

struct GenerateOptions {
  std::int64_t max_tokens = 256;
  SamplingOptions sampling;
  std::vector<std::int32_t> stop;      // stop after sampling one of these (EOS; it is returned and passed to on_token)
  std::vector<AdapterUse> adapters;    // which of the decoder's adapters apply, at what scale (none: the base)
};

struct GenerateResult {
  std::vector<std::int32_t> tokens;  // generated, the prompt excluded
  bool stopped = false;  // at a stop token (else max_tokens)
  double prefill_seconds = 0, decode_seconds = 0;
  std::int64_t prompt_tokens = 0;
};

// InvalidArgument before any work when the prompt is empty, max_tokens < 1, or prompt + max_tokens exceeds the
// decoder's context length (the message names it). `on_token` sees each token as it is sampled.
GenerateResult generate(Decoder& d, std::span<const std::int32_t> prompt, const GenerateOptions& opt,
                        const std::function<void(std::int32_t)>& on_token = {});

}  // namespace pocketlora
