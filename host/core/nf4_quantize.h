#pragma once
// NF4 quantization bit-identical to bitsandbytes' CUDA kernels (quantize_4bit(quant_type="nf4", blocksize=64,
// compress_statistics=True|False)); the derivation is in docs/NF4.md.
//   codes:  64-element blocks over the flattened row-major tensor; absmax = max|x|; code = #CUDA thresholds t
//           with x * (1/absmax) > t; two codes per byte, first element in the high nibble; odd count: the last low nibble is the
//           code of a 0.0 element (7; 0 in an all-zero block), as CUDA pads the block with zeros.
//   double quantization of absmax: offset = mean(absmax); (absmax - offset) quantized blockwise (256) with the
//           signed 8-bit dynamic map (create_dynamic_map(signed=True)) by the CUDA binary search; dequantized as
//           absmax = map[q] * absmax2[b / 256] + offset (two fp32 roundings).
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora {

constexpr std::int64_t kNf4BlockSize = 64;
constexpr std::int64_t kNf4NestedBlockSize = 256;

// bitsandbytes.functional.create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), float32, sorted.
const std::array<float, 256>& bnb_dynamic_map_signed();

struct Nf4DoubleQuant {
  std::vector<std::uint8_t> absmax_q;  // one per 64-block
  std::vector<float> nested_absmax;    // one per 256 absmax values
  float offset = 0;
  // The 256-entry signed map the 8-bit codes index: bitsandbytes' released table unless a checkpoint stored
  // another (a torch build without fused multiply-adds saves a slightly different one; it decodes with its own).
  std::vector<float> code_map{bnb_dynamic_map_signed().begin(), bnb_dynamic_map_signed().end()};
};

// The one host representation of an NF4 weight [N, K] (bitsandbytes layout): what quantization produces, what the
// bnb-4bit reader/writer, the CPU kernels and the GPU upload take.
struct Nf4Quantized {
  Shape shape;
  std::vector<std::uint8_t> codes;  // ceil(n / 2)
  std::vector<float> absmax;        // fp32, one per 64-block (exact first-level values)
  bool double_quant = false;
  Nf4DoubleQuant dq;                // valid when double_quant
  // absmax as the weights are dequantized with: exact (single level) or rebuilt from the 8-bit codes.
  std::vector<float> effective_absmax() const;
};

// Throws NumericError naming `name` and the element index on NaN/Inf input.
Nf4Quantized quantize_nf4(std::span<const float> x, const Shape& shape, bool double_quant, std::string_view name);
// First level only (codes + fp32 absmax) — the part the GPU kernel also computes.
void quantize_nf4_codes(std::span<const float> x, std::vector<std::uint8_t>& codes, std::vector<float>& absmax);
// Second level on an fp32 absmax array (shared by the CPU path and the GPU path, so both store identical bytes).
Nf4DoubleQuant double_quantize_absmax(std::span<const float> absmax);
std::vector<float> dequantize_absmax(const Nf4DoubleQuant& dq, std::size_t blocks);
Tensor dequantize_nf4(const Nf4Quantized& q);

}  // namespace pocketlora
