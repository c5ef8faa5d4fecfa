// `pocketlora quantize --model IN --out OUT.safetensors [--compute-dtype float16|bfloat16|float32]`: converts any
// supported checkpoint to a bitsandbytes 4-bit NF4 (double-quantized) safetensors file + config.json, so a phone
// memory-maps a pre-quantized base instead of quantizing at every start.
#include <fmt/format.h>

#include "host/core/error.h"
#include "host/formats/bnb4bit_linear.h"
#include "host/model/bnb4bit.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

CommandRegistration register_cmd_quantize("quantize", "Convert a checkpoint to bitsandbytes NF4 (bnb-4bit) safetensors", [](CLI::App& sub) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("float16");
  sub.add_option("--model", *in, "Input checkpoint (llama2.c .bin, GGUF, HF safetensors file/dir)")->required();
  sub.add_option("--out", *out, "Output .safetensors (config.json is written next to it)")->required();
  sub.add_option("--compute-dtype", *dtype, "bnb_4bit_compute_dtype recorded in the config")->capture_default_str();
  return [in, out, dtype] {
    const auto compute = dtype_from_torch_name(*dtype);
    if (!compute) throw InvalidArgument("--compute-dtype '" + *dtype + "': expected float16, bfloat16 or float32");
    const std::size_t n = write_bnb4bit(*in, *out, *compute);
    fmt::print("quantized {} linear weights to NF4 (blocksize 64, double quantization) -> {}\n", n, *out);
    return 0;
  };
});

}  // namespace
}  // namespace pocketlora::cli
