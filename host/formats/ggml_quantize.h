#pragma once
// f32 -> ggml block formats, ported from ggml's reference quantizers (ggml/src/ggml-quants.c: quantize_row_q8_0_ref,
// quantize_row_q4_0_ref, quantize_row_q5_0_ref, quantize_row_q4_K_ref, quantize_row_q6_K_ref and their helpers
// nearest_int, make_qkx2_quants, make_qx_quants), the routines llama-quantize uses without an importance matrix.
// Same float operations in the same order, so a block quantizes to the bytes llama.cpp's reference path writes
// (up to the compiler contracting a*b+c, which ggml builds may do). GgufFile's ggml_dequantize reads them back.
#include <cstdint>
#include <vector>

#include "host/formats/gguf.h"

namespace pocketlora {

// Quantizes n elements (a multiple of the type's block size, else InvalidArgument naming the type and n) to
// `type`: F32, F16, Q8_0, Q4_0, Q5_0, Q4_K or Q6_K.
std::vector<std::uint8_t> ggml_quantize(GgmlType type, const float* src, std::int64_t n);

}  // namespace pocketlora
