// llama2.c checkpoint bytes (legacy v0 and export.py v1/v2 headers) as `pocketlora inspect` and
// `pocketlora quantize` read them: load, then load -> NF4 quantize.
#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto& s = fuzz::scratch();
  const auto path = s.write("model.bin", data, size);
  return fuzz::run_guarded([&] {
    (void)looks_like_llama2c_v1(path);
    auto w = load_llama2c(path);
    (void)w.config.summary();
    write_bnb4bit(path, s.fresh_subdir("out") / "model.safetensors");
  });
}
