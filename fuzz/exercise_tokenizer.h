#pragma once
// What the CLI's tokenize / detokenize / data commands do with a loaded tokenizer: encode user text (with and
// without special-token parsing), decode the result, look up pieces and ids, and detokenize arbitrary int32 ids
// (`pocketlora detokenize` accepts any id the user types, so out-of-range ids must be a typed error, not UB).
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok) {
  static const char* const texts[] = {
      "",
      "Hello world! Once upon a time, there was a little dog.",
      " leading space,\ttabs\nand newlines\r\n  ",
      "Unicode: caf\xC3\xA9, \xE4\xB8\xAD\xE6\x96\x87, emoji \xF0\x9F\x98\x80, digits 1234567",
      "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nhi [/INST] ok </s>",
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
      "invalid utf-8: \xFF\xFE\xC3",
  };
  const std::int32_t n = tok.vocab_size();
  for (const char* t : texts)
    for (const bool special : {false, true}) {
      const auto ids = tok.encode(t, true, special);
      (void)tok.decode(ids);
      for (auto id : ids) (void)tok.piece(id);
    }
  std::vector<std::int32_t> all;
  for (std::int32_t id = 0; id < n && id < 512; ++id) {
    all.push_back(id);
    (void)tok.token_to_id(tok.piece(id));
  }
  (void)tok.decode(all);
  (void)tok.bos_id();
  (void)tok.eos_id();
  (void)tok.kind();
  for (const std::int32_t bad : {-1, n, INT32_MIN, INT32_MAX}) {
    try {
      (void)tok.decode(std::vector<std::int32_t>{bad});
    } catch (const Error&) {
    }
  }
}

}  // namespace pocketlora::fuzz
