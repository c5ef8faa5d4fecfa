// safetensors file bytes (8-byte header length, JSON header, data section) as `pocketlora inspect` and
// `pocketlora quantize` read them: open, every tensor viewed and converted to f32, then the whole checkpoint
// (with the tiny model's config.json beside it) loaded as Llama weights and quantized to bnb-4bit NF4.
#include "fuzz/fuzz_guard.h"
#include "fuzz/fuzz_scratch_dir.h"
#include "fuzz/tiny_model.h"
#include "host/formats/safetensors.h"
#include "host/model/bnb4bit.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pocketlora;
  const auto& s = fuzz::scratch();
  s.write("in/config.json", fuzz::kTinyConfigJson);
  const auto path = s.write("in/model.safetensors", data, size);
  return fuzz::run_guarded([&] {
    auto ck = SafetensorsCheckpoint::open(path);
    for (auto& shard : ck.shards()) (void)shard.metadata();
    for (auto* t : ck.tensors()) {
      try {
        (void)ck.tensor(t->name).to(DType::F32);
      } catch (const FormatError&) {
        // dtypes Tensor has no type for (U8, I64, ...): inspect lists them without converting
      }
    }
    write_bnb4bit(path.parent_path(), s.fresh_subdir("out") / "model.safetensors");
  });
}
