// A bitsandbytes 4-bit checkpoint's safetensors bytes (packed codes, absmax, quant maps and the quant_state
// JSON stored as a U8 tensor) loaded with the tiny model's config.json beside it, then every linear dequantized.
#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"
#include "fuzz/tiny_model.h"
#include "host/model/bnb4bit.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto& s = fuzz::scratch();
  s.write("in/config.json", fuzz::kTinyConfigJson);
  const auto path = s.write("in/model.safetensors", data, size);
  return fuzz::run_guarded([&] {
    (void)is_bnb4bit_checkpoint(path);
    auto m = load_bnb4bit(path.parent_path());
    for (auto& [name, q] : m.linears) (void)dequantize_nf4(q);
  });
}
