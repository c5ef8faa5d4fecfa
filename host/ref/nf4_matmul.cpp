#include "host/ref/nf4_matmul.h"

#include <algorithm>
#include <memory>
#include <string>
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
// Below this many weights per thread a GEMV is too small to be worth waking a pool worker (a few us).
constexpr std::int64_t kMinWeightsPerThread = 1 << 16;

int gemv_threads(std::int64_t N, std::int64_t K) {
  return static_cast<int>(std::clamp<std::int64_t>(N * K / kMinWeightsPerThread, 1, cpu_threads()));
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
// over contiguous ranges of rows per thread; X is put in kernel order once.
void gemv_forward(const Nf4Quantized& w, const Nf4BlockScales& scales, const float* X, std::int64_t M, std::int64_t N,
                  std::int64_t K, float* Y, const MatmulOptions& opt) {
  const Nf4GemvKernels& kern = nf4_gemv_kernels();
  const std::int64_t kb = K / kNf4BlockSize;
  auto xk = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(M * K));
  for (std::int64_t m = 0; m < M; ++m) nf4_gemv_to_kernel_order(X + m * K, xk.get() + m * K, K, kern.group);
  run_on_threads(gemv_threads(N, K), [&](int t, int threads) {
    const std::int64_t n0 = N * t / threads, n1 = N * (t + 1) / threads;
    auto row_scales = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(kb));
    float out[kNf4GemvMaxM];
    for (std::int64_t n = n0; n < n1; ++n) {
      scales.fill(n * kb, kb, row_scales.get());
      kern.dot(w.codes.data() + n * (K / 2), row_scales.get(), kb, xk.get(), K, static_cast<int>(M), out);
      for (std::int64_t m = 0; m < M; ++m) store(Y[m * N + n], opt.alpha * out[m], opt.accumulate);
    }
  });
}

// Columns of dX per tile of the backward GEMV: M x 2048 f32 accumulators (8 KiB at M = 1, 32 KiB at M = 4) stay in
// L1/L2 while the thread's rows of W stream over them, each row a whole tile per kernel call.
constexpr std::int64_t kDxTileColumns = 8192;

// dX = alpha * dY * W (+dX) for M <= 4, K a multiple of 64: threads own contiguous ranges of W's rows and add them,
// decoded in registers and scaled by dY[:, n], into their own partial dX (kernel order); the partials are then
// summed in thread order (so results depend on the thread count, not on timing). Splitting K instead would leave
// each thread only K / threads columns per row (16 blocks on a 2048-wide layer), too little work per call.
void gemv_backward(const Nf4Quantized& w, const Nf4BlockScales& scales, const float* DY, std::int64_t M,
                   std::int64_t N, std::int64_t K, float* DX, const MatmulOptions& opt) {
  const Nf4GemvKernels& kern = nf4_gemv_kernels();
  const std::int64_t kb = K / kNf4BlockSize, tile_blocks = kDxTileColumns / kNf4BlockSize;
  const int threads = gemv_threads(N, K);
  // partial[t] = [M][K] in kernel order, zeroed by its thread.
  auto partial = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(threads * M * K));
  run_on_threads(threads, [&](int t, int nt) {
    const std::int64_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
    float* acc = partial.get() + t * M * K;
    std::fill(acc, acc + M * K, 0.0f);
    auto tile_scales = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(tile_blocks));
    for (std::int64_t tb = 0; tb < kb; tb += tile_blocks) {
      const std::int64_t nb = std::min(tile_blocks, kb - tb), k0 = tb * kNf4BlockSize;
      for (std::int64_t n = n0; n < n1; ++n) {
        scales.fill(n * kb + tb, nb, tile_scales.get());
        kern.axpy(w.codes.data() + n * (K / 2) + k0 / 2, tile_scales.get(), nb, DY + n, N, static_cast<int>(M),
                  acc + k0, K);
      }
    }
  });
  // Reduce, back to natural order, scale and store; threads own block-aligned column ranges.
  run_on_threads(threads, [&](int t, int nt) {
    const std::int64_t k0 = kb * t / nt * kNf4BlockSize, k1 = kb * (t + 1) / nt * kNf4BlockSize;
    std::vector<float> sum(static_cast<std::size_t>(k1 - k0)), plain(static_cast<std::size_t>(k1 - k0));
    for (std::int64_t m = 0; m < M; ++m) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int p = 0; p < nt; ++p) {
        const float* src = partial.get() + (p * M + m) * K + k0;
        for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += src[k];
      }
      nf4_gemv_from_kernel_order(sum.data(), plain.data(), k1 - k0, kern.group);
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
    run_on_threads(gemv_threads(N, K), [&](int t, int threads) {
      const std::int64_t n0 = N * t / threads, n1 = N * (t + 1) / threads;
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
    run_on_threads(gemv_threads(N, K), [&](int t, int threads) {
      const std::int64_t chunk = ((K + threads - 1) / threads + kNf4BlockSize - 1) / kNf4BlockSize * kNf4BlockSize;
      const std::int64_t k0 = std::min(K, t * chunk), kc = std::min(K, k0 + chunk) - k0;
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
