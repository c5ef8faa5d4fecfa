#pragma once
// One bitsandbytes Linear4bit weight as a state dict: the per-tensor unit that bnb4bit.h assembles models from,
// and what a bnb-4bit checkpoint holds for each quantized linear `<w>` (= "<module>.weight"):
//   <w>                                uint8 [ceil(n/2), 1]   packed NF4 codes
//   <w>.absmax                         uint8 [blocks] with double quantization, float32 [blocks] without
//   <w>.quant_map                      float32 [16]           the NF4 codebook
//   <w>.nested_absmax                  float32 [ceil(blocks/256)]   (double quantization only)
//   <w>.nested_quant_map               float32 [256]          the signed dynamic map (double quantization only)
//   <w>.quant_state.bitsandbytes__nf4  uint8 [..]             json.dumps of QuantState.as_dict(packed=True)'s
//                                                             non-tensor part, byte for byte as Python writes it
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/core/nf4_quantize.h"
#include "host/core/tensor.h"
#include "host/formats/safetensors.h"

namespace pocketlora {

inline constexpr std::string_view kBnb4bitStateSuffix = ".quant_state.bitsandbytes__nf4";

struct Bnb4bitStateTensor {
  std::string name;
  std::string dtype;  // safetensors dtype: "U8" or "F32"
  Shape shape;
  std::vector<std::uint8_t> bytes;
};

// The torch dtype name bitsandbytes records as quant_state "dtype" for a source tensor of type `t` (the dtype of
// the tensor that was quantized): "float32", "float16" or "bfloat16"; InvalidArgument for other types.
const char* bnb4bit_torch_dtype(DType t);
// The inverse: F32, F16 or BF16 for "float32", "float16", "bfloat16" (configs and quant_states); nullopt otherwise.
std::optional<DType> dtype_from_torch_name(std::string_view name);

// json.dumps of the quant_state: {"quant_type": "nf4", "blocksize": 64, "dtype": ..., "shape": [..],
// and with double quantization "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": ...}.
std::string bnb4bit_quant_state_json(const Nf4Quantized& q, std::string_view torch_dtype);

// The tensors bitsandbytes saves for `q` under `weight_name`, in the order listed above.
std::vector<Bnb4bitStateTensor> bnb4bit_linear_state_dict(const std::string& weight_name, const Nf4Quantized& q,
                                                          std::string_view torch_dtype);

struct Bnb4bitLinear {
  Nf4Quantized q;     // absmax holds the dequantized values when double-quantized (as the weights are used)
  DType dtype = DType::F32;  // quant_state "dtype": F32, F16 or BF16 (the tensor that was quantized)
  std::vector<std::string> tensor_names;  // every state dict entry read for this weight
};

// Reads the state dict of `weight_name` from `ck` without re-quantizing anything. FormatError naming `origin`,
// the weight and the field (expected vs found) for anything that is not a bitsandbytes NF4 state.
Bnb4bitLinear read_bnb4bit_linear(const SafetensorsCheckpoint& ck, const std::string& weight_name,
                                  const std::string& origin);

}  // namespace pocketlora
