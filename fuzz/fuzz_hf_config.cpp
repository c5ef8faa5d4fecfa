// Hugging Face config.json as every HF-layout loader reads it: the Llama config, validation and the RoPE
// frequencies (with rope_scaling when present).
#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"
#include "host/model/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto path = fuzz::scratch().write("config.json", data, size);
  return fuzz::run_guarded([&] {
    const auto c = llama_config_from_hf(path);
    (void)c.summary();
    (void)c.rope_inv_freq();
  });
}
