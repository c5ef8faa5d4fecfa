#pragma once
// NF4 -> f32 decoding for the CPU kernels (host/ref/nf4_matmul.h). A decoded element is exactly
// dequantize_nf4's value: kNf4Codebook[code] * absmax[block] (one f32 product; absmax rebuilt from the 8-bit
// double-quant codes with the same two f32 roundings), so CPU results differ from dequantize-then-matmul only in
// the order of the f32 accumulation. Whole 64-element blocks run through a 16-entry LUT on SIMD shuffles (AVX-512
// vpermps, AVX2 two vpermps + blend), picked once at run time; everything else is portable scalar code.
#include <cstdint>
#include <string_view>

#include "host/core/nf4_quantize.h"

namespace pocketlora::ref {

// Checks that `w`'s codes/absmax sizes fit its shape (names `op` and the field on mismatch).
void check_nf4_weight(const char* op, const Nf4Quantized& w);

// The weight's absmax as it is dequantized with, block by block, without materialising the array.
class Nf4BlockScales {
 public:
  explicit Nf4BlockScales(const Nf4Quantized& w);
  float operator()(std::int64_t block) const;
  // out[i] = (*this)(first + i) for i < count, in one pass (the fused GEMV rebuilds a row's scales at a time).
  void fill(std::int64_t first, std::int64_t count, float* out) const;

 private:
  const Nf4Quantized& w_;
  const float* map_;
};

// out[i] = W_flat[begin + i] for i < count (row-major flattened weight; any begin/count, SIMD on whole blocks).
void nf4_decode(const Nf4Quantized& w, const Nf4BlockScales& scales, std::int64_t begin, std::int64_t count,
                float* out);

// sum(a[i] * b[i]) and y[i] += s * x[i], vectorised for the machine (f32, in-register partial sums).
float dot_f32(const float* a, const float* b, std::int64_t n);
void axpy_f32(float s, const float* x, float* y, std::int64_t n);

// The kernel set in use; the fused GEMV kernels (host/ref/nf4_gemv_kernels.h) follow the same choice.
enum class Nf4Isa { scalar, avx2, avx512 };
Nf4Isa nf4_isa();

// Which kernels this process runs ("avx512", "avx2" or "scalar"), for benchmarks and logs.
const char* nf4_decode_isa();
// Forces one kernel set for the decoder and the fused GEMV (tests cover every set the machine supports); false if the machine lacks it.
bool set_nf4_decode_isa(std::string_view isa);

}  // namespace pocketlora::ref
