#include "host/core/nf4_quantize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "host/core/error.h"
#include "shaders/common/nf4_codebook.h"

namespace pocketlora {

namespace {

// torch.linspace(0.1, 1, steps, dtype=float32) as released torch >= 2.0 computes it on x86 CPUs: ATen's
// linspace kernel (RangeFactoriesKernel.cpp) evaluates two-sided, start + step * i for the first half and
// end - step * (steps - 1 - i) for the second, and the released builds contract both to fused multiply-adds.
// Written as explicit std::fma so the result does not depend on this compiler's contraction choices; the plain
// (unfused) evaluation differs in 42 of the 256 map entries (docs/NF4.md).
std::vector<float> torch_linspace_f32(float start, float end, int steps) {
  std::vector<float> v(static_cast<std::size_t>(steps));
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i)
    v[static_cast<std::size_t>(i)] = i < halfway ? std::fma(step, static_cast<float>(i), start)
                                                 : std::fma(-step, static_cast<float>(steps - i - 1), end);
  return v;
}

std::array<float, 256> make_dynamic_map_signed() {
  constexpr int max_exponent_bits = 7, non_sign_bits = 7;
  std::vector<float> data;
  for (int i = 0; i < max_exponent_bits; ++i) {
    const int fraction_items = (1 << (i + non_sign_bits - max_exponent_bits)) + 1;
    const auto b = torch_linspace_f32(0.1f, 1.0f, fraction_items);
    // Python `10 ** (-(max_exponent_bits - 1) + i)` times a float32 tensor: the scalar is applied as float32.
    const float scale = static_cast<float>(std::pow(10.0, -(max_exponent_bits - 1) + i));
    for (std::size_t j = 0; j + 1 < b.size(); ++j) {
      const float mean = (b[j] + b[j + 1]) / 2.0f;
      data.push_back(scale * mean);
      data.push_back(-scale * mean);
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  std::array<float, 256> out{};
  std::copy(data.begin(), data.end(), out.begin());
  return out;
}

// bitsandbytes' dQuantize<0> (csrc/kernels.cu): a 7-step binary search over the sorted 256-entry code that
// tracks the neighbouring values, then a midpoint decision (with the same fp32 midpoint arithmetic).
std::uint8_t quantize_8bit_dynamic(const std::array<float, 256>& code, float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[127];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[static_cast<std::size_t>(pivot)];
  }
  if (upper_pivot == 255) upper = code[255];
  if (lower_pivot == 0) lower = code[0];
  if (x > val) {
    const float midpoint = (upper + val) * 0.5f;
    return static_cast<std::uint8_t>(x > midpoint ? upper_pivot : pivot);
  }
  const float midpoint = (lower + val) * 0.5f;
  return static_cast<std::uint8_t>(x < midpoint ? lower_pivot : pivot);
}

}  // namespace

const std::array<float, 256>& bnb_dynamic_map_signed() {
  static const std::array<float, 256> map = make_dynamic_map_signed();
  return map;
}

void quantize_nf4_codes(std::span<const float> x, std::vector<std::uint8_t>& codes, std::vector<float>& absmax) {
  const std::size_t n = x.size(), blocks = (n + kNf4BlockSize - 1) / kNf4BlockSize;
  codes.assign((n + 1) / 2, 0);
  absmax.assign(blocks, 0.0f);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t begin = b * kNf4BlockSize, end = std::min(n, begin + kNf4BlockSize);
    float amax = 0.0f;
    for (std::size_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    absmax[b] = amax;
    const float inv = 1.0f / amax;  // the CUDA kernel multiplies by the reciprocal
    // An odd count leaves a low nibble with no element: CUDA loads that slot as 0.0f and quantizes it like any
    // other value (code 7, or 0 in an all-zero block), so the padding nibble is the code of 0.
    const std::size_t packed_end = std::min(codes.size() * 2, begin + kNf4BlockSize);
    for (std::size_t i = begin; i < packed_end; ++i) {
      // All-zero block: 0 * inf = NaN fails every comparison -> code 0, as on CUDA.
      const float v = (i < end ? x[i] : 0.0f) * inv;
      std::uint8_t c = 0;
      for (float t : kNf4Thresholds) c += v > t ? 1 : 0;
      codes[i / 2] |= static_cast<std::uint8_t>(i % 2 == 0 ? c << 4 : c);
    }
  }
}

Nf4DoubleQuant double_quantize_absmax(std::span<const float> absmax) {
  Nf4DoubleQuant dq;
  // offset = absmax.mean(): accumulated in double and rounded once (torch's float32 reduction order is not
  // reproducible across devices; the stored offset makes loading exact either way — see docs/NF4.md).
  double sum = 0;
  for (float a : absmax) sum += a;
  dq.offset = absmax.empty() ? 0.0f : static_cast<float>(sum / static_cast<double>(absmax.size()));
  const auto& code = bnb_dynamic_map_signed();
  const std::size_t n = absmax.size(), blocks = (n + kNf4NestedBlockSize - 1) / kNf4NestedBlockSize;
  dq.absmax_q.assign(n, 0);
  dq.nested_absmax.assign(blocks, 0.0f);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t begin = b * kNf4NestedBlockSize, end = std::min(n, begin + kNf4NestedBlockSize);
    float amax = 0.0f;
    for (std::size_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(absmax[i] - dq.offset));
    dq.nested_absmax[b] = amax;
    const float inv = 1.0f / amax;
    for (std::size_t i = begin; i < end; ++i) dq.absmax_q[i] = quantize_8bit_dynamic(code, (absmax[i] - dq.offset) * inv);
  }
  return dq;
}

std::vector<float> dequantize_absmax(const Nf4DoubleQuant& dq, std::size_t blocks) {
  if (dq.absmax_q.size() != blocks ||
      dq.nested_absmax.size() != (blocks + kNf4NestedBlockSize - 1) / kNf4NestedBlockSize || dq.code_map.size() != 256)
    throw ShapeError("dequantize_absmax: " + std::to_string(dq.absmax_q.size()) + " codes / " +
                     std::to_string(dq.nested_absmax.size()) + " nested scales / " +
                     std::to_string(dq.code_map.size()) + "-entry code map do not fit " + std::to_string(blocks) +
                     " blocks (and 256 map entries)");
  const auto& code = dq.code_map;
  std::vector<float> a(blocks);
  for (std::size_t b = 0; b < blocks; ++b) {
    const volatile float scaled = code[dq.absmax_q[b]] * dq.nested_absmax[b / kNf4NestedBlockSize];
    a[b] = scaled + dq.offset;
  }
  return a;
}

std::vector<float> Nf4Quantized::effective_absmax() const {
  return double_quant ? dequantize_absmax(dq, absmax.size()) : absmax;
}

Nf4Quantized quantize_nf4(std::span<const float> x, const Shape& shape, bool double_quant, std::string_view name) {
  if (static_cast<std::int64_t>(x.size()) != shape_numel(shape))
    throw ShapeError("quantize_nf4: '" + std::string(name) + "' has " + std::to_string(x.size()) +
                     " values for shape " + shape_str(shape));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw NumericError("NF4 quantization of '" + std::string(name) + "' " + shape_str(shape) + ": element " +
                         std::to_string(i) + " is " + (std::isnan(x[i]) ? "NaN" : "Inf") +
                         "; the checkpoint tensor is corrupt");
  Nf4Quantized q;
  q.shape = shape;
  quantize_nf4_codes(x, q.codes, q.absmax);
  q.double_quant = double_quant;
  if (double_quant) q.dq = double_quantize_absmax(q.absmax);
  return q;
}

Tensor dequantize_nf4(const Nf4Quantized& q) {
  const std::vector<float> am = q.effective_absmax();
  Tensor w = Tensor::zeros(q.shape);
  float* out = w.data<float>();
  for (std::int64_t e = 0; e < w.numel(); ++e) {
    const std::uint8_t byte = q.codes[static_cast<std::size_t>(e / 2)];
    out[e] = kNf4Codebook[e % 2 == 0 ? byte >> 4 : byte & 0xf] * am[static_cast<std::size_t>(e / kNf4BlockSize)];
  }
  return w;
}

}  // namespace pocketlora
