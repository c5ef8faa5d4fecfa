// GGUF bytes as `pocketlora inspect` and `pocketlora quantize` read them: header, every metadata value,
// tensor infos, the Llama config from metadata, every tensor dequantized to f32, then load -> NF4 quantize.
#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"
#include "host/formats/gguf.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto& s = fuzz::scratch();
  const auto path = s.write("model.gguf", data, size);
  return fuzz::run_guarded([&] {
    auto g = GgufFile::open(path);
    for (auto& [key, v] : g.metadata()) (void)g.value(key);
    for (auto& t : g.tensors()) {
      (void)t.row_major_shape();
      (void)g.load_f32(t.name);
    }
    try {
      (void)llama_config_from_gguf(g);
    } catch (const Error&) {
      // inspect reports an underivable config and goes on
    }
    write_bnb4bit(path, s.fresh_subdir("out") / "model.safetensors");
  });
}
