#pragma once
// GPU matmuls through a frozen NF4 weight W [N,K] (bitsandbytes layout, see docs/NF4.md), never materialising W:
//   nf4_matmul:          Y[M,N]  = alpha * X[M,K] * W^T   (+Y)   — GEMV path for M <= nf4.gemv_max_m, tiled else
//   nf4_matmul_backward: dX[M,K] = alpha * dY[M,N] * W    (+dX)  — input gradient only: W is frozen
//   nf4_dequantize:      W_f32[N,K]                               — for merging and tests
// X/Y are f32 or f16 (f32 accumulation).
#include <cstdint>
#include <span>

#include "host/core/nf4_quantize.h"
#include "host/core/op/matmul.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

// Device-resident NF4 weight. `absmax` is f32 [blocks] (single-level) or u8 [blocks] (double-quantized, with
// `nested` f32 [ceil(blocks / nested_block)], `code_map` f32 [256] and `offset`).
struct Nf4Weight {
  Shape shape;  // [N, K]
  DeviceTensor codes, absmax, nested, code_map;
  float offset = 0.0f;
  bool double_quant = false;
  std::uint32_t nested_block = 256;
  std::string name;  // for error messages
};

// Uploads the one host NF4 representation (codes, absmax or double-quant statistics with their code map).
Nf4Weight upload_nf4(vk::Device& dev, vk::Arena& arena, const Nf4Quantized& q, const std::string& name);

void nf4_matmul(vk::Sequence& seq, const DeviceTensor& x, const Nf4Weight& w, const DeviceTensor& y,
                const MatmulOptions& opt = {});
void nf4_matmul_backward(vk::Sequence& seq, const Nf4Weight& w, const DeviceTensor& dy, const DeviceTensor& dx,
                         const MatmulOptions& opt = {});
void nf4_dequantize(vk::Sequence& seq, const Nf4Weight& w, const DeviceTensor& out);

}  // namespace pocketlora::ops
