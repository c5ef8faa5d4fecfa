#pragma once
// The one NF4 test-data generator of the tests: random NF4 bytes in the bitsandbytes layout (codes, fp32 absmax
// or double-quantized absmax with an arbitrary 256-entry code map), written here independently of the library's
// quantizer, with an independent CPU decode. GPU kernels, the CPU NF4 kernels and dequantize_nf4 are all held to
// decode(). (The benches have their own synthetic weight in bench/cpu_backend_timing.h.)
#include <cstddef>
#include <cstdint>
#include <vector>

#include "host/core/nf4_quantize.h"
#include "host/core/tensor.h"

namespace pocketlora::test {

struct Nf4TestData {
  Shape shape;  // [N, K]
  std::vector<std::uint8_t> codes, absmax_q;
  std::vector<float> absmax, nested, code_map;
  float offset = 0;
  bool double_quant = false;

  // The absmax block b is decoded with: absmax[b], or map[q] * nested + offset (two separately rounded fp32
  // operations, as bitsandbytes computes it) when double-quantized.
  float block_absmax(std::size_t b) const;
  // The library's one NF4 representation of these bytes. Its fp32 absmax is always `absmax`: when double-quantized
  // these stand for the exact first-level values, which the 8-bit codes here do not encode, so a consumer that
  // decodes a double-quantized weight from them instead of from the codes fails its test.
  Nf4Quantized quantized() const;
  // CPU decode: code * block_absmax in fp32.
  Tensor decode() const;
};

// Random codes (an odd element count pads the last low nibble with the code of 0.0), fp32 absmax in [0.01, 1.01]
// per 64-block and, when double-quantized, 8-bit absmax codes over a linear map of [-1, 1] with nested scales in
// [0.05, 0.15] per 256 blocks and offset 0.3 (decoded absmax in [0.15, 0.45]). Deterministic in (N, K, seed).
Nf4TestData random_nf4(std::int64_t N, std::int64_t K, bool double_quant, std::uint64_t seed);

// The hand-built NF4 quantization input of 197 elements: block 0 (absmax 1, so x/absmax == x) holds +1, -1 and
// each CUDA threshold t (which must stay below: the comparison is strict) next to nextafter(t, 2) (which moves
// up); block 1 is all zeros; block 2 is all -0.25; block 3 is a 5-element tail (-1, -0.5, 0, 0.5, 1): odd count.
std::vector<float> nf4_hand_quantize_input();

}  // namespace pocketlora::test
