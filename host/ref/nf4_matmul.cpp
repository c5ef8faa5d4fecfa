#include "host/ref/nf4_matmul.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "host/core/error.h"
#include "host/ref/blas.h"
#include "host/ref/nf4_decode.h"
#include "host/ref/nf4_gemv_kernels.h"
#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

// Decoded rows per GEMM panel: ~4 MiB of f32 (L3-resident while sgemm packs it) and at least 64 rows so the
// sgemm's inner dimension stays efficient in the backward. 1 MiB (L2) panels measured 0.35-0.75x the f32 GEMM at
// M = 128 on the loaded 2-core machines against 0.9-1.1x for 4 MiB: every threaded sgemm call synchronises its
// threads, and fewer, larger calls pay that less often.
constexpr std::int64_t kPanelFloats = 1024 * 1024;
constexpr std::int64_t kMinPanelRows = 64;
// GEMV work is cut into chunks the pool's threads claim (host/ref/parallel.h): at least this many weights each
// (waking a worker costs a few us), at most kMaxGemvChunks (a late worker still finds some left).
constexpr std::int64_t kMinWeightsPerChunk = 1 << 16;
constexpr std::int64_t kMaxGemvChunks = 32;

std::int64_t gemv_chunks(std::int64_t N, std::int64_t K) {
  return std::clamp<std::int64_t>(N * K / kMinWeightsPerChunk, 1, kMaxGemvChunks);
}

// [begin, end) of chunk c of C over n items, in units of `align`.
std::pair<std::int64_t, std::int64_t> nf4_chunk_range(std::int64_t c, std::int64_t C, std::int64_t n, std::int64_t align = 1) {
  const std::int64_t units = (n + align - 1) / align;
  return {std::min(n, units * c / C * align), std::min(n, units * (c + 1) / C * align)};
}

std::int64_t panel_rows(std::int64_t N, std::int64_t K) {
  return std::min(N, std::max(kMinPanelRows, kPanelFloats / std::max<std::int64_t>(K, 1)));
}

void check_args(const char* op, const Nf4Quantized& w, const Tensor& in, const char* in_name, const Tensor& out,
                const char* out_name, const MatmulOptions& opt) {
  if (opt.trans_a || opt.trans_b)
    throw InvalidArgument(std::string(op) + ": transposed operands are not supported (W is always [N,K])");
  if (w.shape.size() != 2)
    throw ShapeError(std::string(op) + ": NF4 weight " + shape_str(w.shape) + " must be 2-D [N,K]");
  check_nf4_weight(op, w);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{in_name, &in}, {out_name, &out}})
    if (t->dtype() != DType::F32 && t->dtype() != DType::F16 && t->dtype() != DType::BF16)
      throw ShapeError(std::string(op) + ": " + name + " " + shape_str(t->shape()) + " is " + dtype_name(t->dtype()) +
                       ", expected f32, f16 or bf16");
}

// f32 working copy of an output: the tensor itself, or a widened copy (zeros unless accumulating).
Tensor f32_output(const Tensor& t, bool accumulate) {
  if (t.dtype() == DType::F32) return t;
  return accumulate ? t.to(DType::F32) : Tensor::zeros(t.shape(), DType::F32);
}

void store(float& dst, float v, bool accumulate) { dst = accumulate ? dst + v : v; }

// Decodes rows [n0, n0 + rows) of W into panel[rows, K] on the calling thread: decoding costs one LUT shuffle per
// 16 weights against 2*M flops per weight in the sgemm, and an OpenMP region between two threaded sgemm calls
// makes both thread pools hand the cores back and forth (measured 10-20x slower on the 2-core machines).
void decode_panel(const Nf4Quantized& w, const Nf4BlockScales& scales, std::int64_t n0, std::int64_t rows,
                  std::int64_t K, float* panel) {
  nf4_decode(w, scales, n0 * K, rows * K, panel);
}

// Y[:, n] = alpha * X * W[n,:]^T (+Y) for M <= 4, K a multiple of 64: the fused kernels (host/ref/nf4_gemv_kernels.h)
// over chunks of rows; X is put in kernel order once.
void gemv_forward(const Nf4Quantized& w, const Nf4BlockScales& scales, const float* X, std::int64_t M, std::int64_t N,
                  std::int64_t K, float* Y, const MatmulOptions& opt) {
  const Nf4GemvKernels& kern = nf4_gemv_kernels();
  const std::int64_t kb = K / kNf4BlockSize, chunks = gemv_chunks(N, K);
  auto xk = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(M * K));
  for (std::int64_t m = 0; m < M; ++m) nf4_gemv_to_kernel_order(X + m * K, xk.get() + m * K, K, kern.order);
  parallel_chunks(chunks, [&](std::int64_t c) {
    const auto [n0, n1] = nf4_chunk_range(c, chunks, N);
    std::vector<float> row_scales(static_cast<std::size_t>(kb));
    float out[kNf4GemvMaxM];
    for (std::int64_t n = n0; n < n1; ++n) {
      scales.fill(n * kb, kb, row_scales.data());
      kern.dot(w.codes.data() + n * (K / 2), row_scales.data(), kb, xk.get(), K, static_cast<int>(M), out);
      for (std::int64_t m = 0; m < M; ++m) store(Y[m * N + n], opt.alpha * out[m], opt.accumulate);
    }
  });
}

// Columns of dX per tile of the backward GEMV: M x 8192 f32 accumulators (32 KiB at M = 1) while a chunk's rows of W
// stream over them, each row a whole tile per kernel call (per-call work must stay large: splitting K between
// threads left 16 blocks per call on a 2048-wide layer and ran ~3x slower).
constexpr std::int64_t kDxTileColumns = 8192;
// Partial dX sums, one per chunk of rows (M x K floats each).
constexpr std::int64_t kMaxDxChunks = 8;

// dX = alpha * dY * W (+dX) for M <= 4, K a multiple of 64: fixed chunks of W's rows, each decoded in registers and
// added, scaled by dY[:, n], into the chunk's own partial dX (kernel order); then the partials are summed in chunk
// order per column range. Chunks are fixed by the shape, so results do not depend on which thread ran what.
void gemv_backward(const Nf4Quantized& w, const Nf4BlockScales& scales, const float* DY, std::int64_t M,
                   std::int64_t N, std::int64_t K, float* DX, const MatmulOptions& opt) {
  const Nf4GemvKernels& kern = nf4_gemv_kernels();
  const std::int64_t kb = K / kNf4BlockSize, tile_blocks = kDxTileColumns / kNf4BlockSize;
  const std::int64_t chunks = std::min(kMaxDxChunks, gemv_chunks(N, K));
  auto partial = std::make_unique<float[]>(static_cast<std::size_t>(chunks * M * K));  // zeroed
  parallel_chunks(chunks, [&](std::int64_t c) {
    const auto [n0, n1] = nf4_chunk_range(c, chunks, N);
    float* acc = partial.get() + c * M * K;
    std::vector<float> tile_scales(static_cast<std::size_t>(tile_blocks));
    for (std::int64_t tb = 0; tb < kb; tb += tile_blocks) {
      const std::int64_t nb = std::min(tile_blocks, kb - tb), k0 = tb * kNf4BlockSize;
      for (std::int64_t n = n0; n < n1; ++n) {
        scales.fill(n * kb + tb, nb, tile_scales.data());
        kern.axpy(w.codes.data() + n * (K / 2) + k0 / 2, tile_scales.data(), nb, DY + n, N, static_cast<int>(M),
                  acc + k0, K);
      }
    }
  });
  // Reduce, back to natural order, scale and store, over block-aligned column ranges.
  const std::int64_t col_chunks = std::clamp<std::int64_t>(M * K * chunks / kMinWeightsPerChunk, 1, kMaxGemvChunks);
  parallel_chunks(col_chunks, [&](std::int64_t c) {
    const auto [k0, k1] = nf4_chunk_range(c, col_chunks, K, kNf4BlockSize);
    std::vector<float> sum(static_cast<std::size_t>(k1 - k0)), plain(static_cast<std::size_t>(k1 - k0));
    for (std::int64_t m = 0; m < M; ++m) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (std::int64_t p = 0; p < chunks; ++p) {
        const float* src = partial.get() + (p * M + m) * K + k0;
        for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += src[k];
      }
      nf4_gemv_from_kernel_order(sum.data(), plain.data(), k1 - k0, kern.order);
      for (std::int64_t k = k0; k < k1; ++k)
        store(DX[m * K + k], opt.alpha * plain[static_cast<std::size_t>(k - k0)], opt.accumulate);
    }
  });
}

}  // namespace

void nf4_matmul(const Tensor& x, const Nf4Quantized& w, Tensor& y, const MatmulOptions& opt) {
  const char* op = "ref::nf4_matmul";
  check_args(op, w, x, "X", y, "Y", opt);
  const auto [M, N, K] = check_matmul_shapes(op, x.shape(), w.shape, y.shape());
  const Tensor xf = x.dtype() == DType::F32 ? x : x.to(DType::F32);
  Tensor yf = f32_output(y, opt.accumulate);
  const float* X = xf.data<float>();
  float* Y = yf.data<float>();
  const Nf4BlockScales scales(w);
  if (M <= kNf4GemvMaxM && K % kNf4BlockSize == 0) {
    if (M > 0) gemv_forward(w, scales, X, M, N, K, Y, opt);
  } else if (M <= kNf4GemvMaxM) {
    // K not a multiple of 64 (blocks straddle rows): decode W[n,:] once into an L1 buffer, then one dot product
    // per token. Threads own contiguous ranges of rows.
    const std::int64_t chunks = gemv_chunks(N, K);
    parallel_chunks(chunks, [&](std::int64_t c) {
      const auto [n0, n1] = nf4_chunk_range(c, chunks, N);
      auto row = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(K));
      for (std::int64_t n = n0; n < n1; ++n) {
        nf4_decode(w, scales, n * K, K, row.get());
        for (std::int64_t m = 0; m < M; ++m)
          store(Y[m * N + n], opt.alpha * dot_f32(row.get(), X + m * K, K), opt.accumulate);
      }
    });
  } else {
    const std::int64_t rows = panel_rows(N, K);
    auto panel = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(rows * K));
    for (std::int64_t n0 = 0; n0 < N; n0 += rows) {
      const std::int64_t nb = std::min(rows, N - n0);
      decode_panel(w, scales, n0, nb, K, panel.get());
      // Y[:, n0:n0+nb] = alpha * X * panel^T (+Y)
      gemm(false, true, M, nb, K, opt.alpha, X, K, panel.get(), K, opt.accumulate ? 1.0f : 0.0f, Y + n0, N);
    }
  }
  if (y.dtype() != DType::F32) y.copy_from(yf);
}

void nf4_matmul_backward(const Nf4Quantized& w, const Tensor& dy, Tensor& dx, const MatmulOptions& opt) {
  const char* op = "ref::nf4_matmul_backward";
  check_args(op, w, dy, "dY", dx, "dX", opt);
  // dX = dY * W is the forward form with B = W^T [K,N].
  const auto [M, K, N] = check_matmul_shapes(op, dy.shape(), Shape{w.shape[1], w.shape[0]}, dx.shape());
  const Tensor dyf = dy.dtype() == DType::F32 ? dy : dy.to(DType::F32);
  Tensor dxf = f32_output(dx, opt.accumulate);
  const float* DY = dyf.data<float>();
  float* DX = dxf.data<float>();
  const Nf4BlockScales scales(w);
  if (M <= kNf4GemvMaxM && K % kNf4BlockSize == 0) {
    if (M > 0) gemv_backward(w, scales, DY, M, N, K, DX, opt);
  } else if (M <= kNf4GemvMaxM) {
    // K not a multiple of 64: threads own disjoint column ranges of dX and stream every decoded row over them.
    const std::int64_t chunks = std::min(cpu_threads() * std::int64_t{2}, gemv_chunks(N, K));
    parallel_chunks(chunks, [&](std::int64_t c) {
      const auto [k0, k1] = nf4_chunk_range(c, chunks, K, kNf4BlockSize);
      const std::int64_t kc = k1 - k0;
      if (kc > 0) {
        auto buf = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(kc));
        auto acc = std::make_unique<float[]>(static_cast<std::size_t>(M * kc));  // zeroed
        for (std::int64_t n = 0; n < N; ++n) {
          nf4_decode(w, scales, n * K + k0, kc, buf.get());
          for (std::int64_t m = 0; m < M; ++m) axpy_f32(DY[m * N + n], buf.get(), acc.get() + m * kc, kc);
        }
        for (std::int64_t m = 0; m < M; ++m)
          for (std::int64_t k = 0; k < kc; ++k) store(DX[m * K + k0 + k], opt.alpha * acc[m * kc + k], opt.accumulate);
      }
    });
  } else {
    const std::int64_t rows = panel_rows(N, K);
    auto panel = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(rows * K));
    if (N == 0 && !opt.accumulate) std::fill(DX, DX + M * K, 0.0f);
    for (std::int64_t n0 = 0; n0 < N; n0 += rows) {
      const std::int64_t nb = std::min(rows, N - n0);
      decode_panel(w, scales, n0, nb, K, panel.get());
      // dX += alpha * dY[:, n0:n0+nb] * panel (the first panel overwrites unless accumulating)
      const float beta = n0 == 0 && !opt.accumulate ? 0.0f : 1.0f;
      gemm(false, false, M, K, nb, opt.alpha, DY + n0, N, panel.get(), K, beta, DX, K);
    }
  }
  if (dx.dtype() != DType::F32) dx.copy_from(dxf);
}

}  // namespace pocketlora::ref
