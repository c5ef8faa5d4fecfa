#include "common/nf4_test_data.h"

#include <cmath>

#include "harness/op_harness.h"
#include "shaders/common/nf4_codebook.h"

namespace pocketlora::test {

float Nf4TestData::block_absmax(std::size_t b) const {
  if (!double_quant) return absmax[b];
  volatile float scaled = code_map[absmax_q[b]] * nested[b / 256];  // rounded to fp32 before the add
  return scaled + offset;
}

Nf4Quantized Nf4TestData::quantized() const {
  Nf4Quantized q;
  q.shape = shape;
  q.codes = codes;
  q.double_quant = double_quant;
  q.absmax = absmax;
  if (double_quant) {
    q.dq.absmax_q = absmax_q;
    q.dq.nested_absmax = nested;
    q.dq.code_map = code_map;
    q.dq.offset = offset;
  }
  return q;
}

Tensor Nf4TestData::decode() const {
  Tensor w = Tensor::zeros(shape);
  float* out = w.data<float>();
  for (std::int64_t e = 0; e < w.numel(); ++e) {
    const std::uint8_t byte = codes[static_cast<std::size_t>(e / 2)];
    const int code = (e % 2 == 0) ? (byte >> 4) : (byte & 0xf);
    out[e] = kNf4Codebook[code] * block_absmax(static_cast<std::size_t>(e / 64));
  }
  return w;
}

Nf4TestData random_nf4(std::int64_t N, std::int64_t K, bool double_quant, std::uint64_t seed) {
  Nf4TestData d;
  d.shape = {N, K};
  d.double_quant = double_quant;
  const std::int64_t n = N * K, blocks = (n + 63) / 64;
  const Tensor r = random_tensor({(n + 1) / 2 + 3 * blocks + 256}, seed, 0.0f, 1.0f);
  const float* u = r.data<float>();
  std::size_t i = 0;
  for (std::int64_t j = 0; j < (n + 1) / 2; ++j) d.codes.push_back(static_cast<std::uint8_t>(u[i++] * 255.99f));
  if (n % 2) d.codes.back() = static_cast<std::uint8_t>((d.codes.back() & 0xf0) | 7);  // pad: code of 0.0
  for (std::int64_t b = 0; b < blocks; ++b) d.absmax.push_back(0.01f + u[i++]);
  for (std::int64_t b = 0; b < blocks; ++b) d.absmax_q.push_back(static_cast<std::uint8_t>(u[i++] * 255.99f));
  for (std::int64_t b = 0; b < (blocks + 255) / 256; ++b) d.nested.push_back(0.05f + 0.1f * u[i++]);
  for (int q = 0; q < 256; ++q) d.code_map.push_back(-1.0f + 2.0f * static_cast<float>(q) / 255.0f);
  d.offset = 0.3f;
  return d;
}

std::vector<float> nf4_hand_quantize_input() {
  std::vector<float> x(64 * 3 + 5, 0.0f);
  x[0] = 1.0f;
  for (int t = 0; t < 15; ++t) {
    x[static_cast<std::size_t>(1 + 2 * t)] = kNf4Thresholds[t];
    x[static_cast<std::size_t>(2 + 2 * t)] = std::nextafter(kNf4Thresholds[t], 2.0f);
  }
  x[31] = -1.0f;
  for (int i = 128; i < 192; ++i) x[static_cast<std::size_t>(i)] = -0.25f;
  for (int i = 192; i < 197; ++i) x[static_cast<std::size_t>(i)] = 0.5f * static_cast<float>(i - 194);
  return x;
}

}  // namespace pocketlora::test
