// Tokenizer file bytes through load_tokenizer, as `pocketlora tokenize`, `detokenize` and `data stats` use it,
// then encode/decode. Built as four targets (spm_model, tokenizer_bin, tokenizer_json, gguf_vocab) that differ
// in seeds and dictionary only: the reader is picked from the first bytes, as for a real file, so mutations
// that change those bytes reach the other readers too. POCKETLORA_FUZZ_FILE_NAME only names the file in errors.
#include "fuzz/exercise_tokenizer.h"
#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto path = fuzz::scratch().write(POCKETLORA_FUZZ_FILE_NAME, data, size);
  return fuzz::run_guarded([&] { fuzz::exercise_tokenizer(*load_tokenizer(path)); });
}
