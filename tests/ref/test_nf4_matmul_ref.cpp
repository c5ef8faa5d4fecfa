// CPU NF4 matmuls (host/ref/nf4_matmul.h) against an independent decode of the shared NF4 test data
// (tests/common/nf4_test_data.h) + a naive f64 product, on every SIMD kernel set the machine has: ragged shapes (K
// not a multiple of 64, odd N*K so blocks straddle rows: the decode-a-row GEMV), K a multiple of 64 with odd N (the
// fused decode-FMA GEMV, every M from 1 to 4, threaded and not), the panel-GEMM (M > 4) path, several panels,
// double quantization on and off, alpha and accumulation, f16 storage.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/error_message.h"
#include "common/nf4_test_data.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/nf4_decode.h"
#include "host/ref/nf4_gemv_kernels.h"
#include "host/ref/nf4_matmul.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

std::vector<std::string> machine_isas() {
  std::vector<std::string> isas;
  for (const char* isa : {"scalar", "avx2", "avx512"})
    if (ref::set_nf4_decode_isa(isa)) isas.push_back(isa);
  ref::set_nf4_decode_isa({});  // back to the best one
  return isas;
}

// Restores the default kernel set however the test ends.
struct IsaScope {
  explicit IsaScope(const std::string& isa) { EXPECT_TRUE(ref::set_nf4_decode_isa(isa)) << isa; }
  ~IsaScope() { ref::set_nf4_decode_isa({}); }
};

// want[m, j] = sum_k a[m, k] * b(j, k) in f64, and the same sum of |products| for the rounding bound.
struct Reference {
  std::vector<double> value, magnitude;
};
template <typename B>
Reference naive(const Tensor& a64, std::int64_t rows, std::int64_t cols, std::int64_t inner, B b) {
  Reference r{std::vector<double>(static_cast<std::size_t>(rows * cols)),
              std::vector<double>(static_cast<std::size_t>(rows * cols))};
  const double* A = a64.data<double>();
  for (std::int64_t m = 0; m < rows; ++m)
    for (std::int64_t j = 0; j < cols; ++j) {
      double s = 0, mag = 0;
      for (std::int64_t k = 0; k < inner; ++k) {
        const double p = A[m * inner + k] * b(j, k);
        s += p;
        mag += std::fabs(p);
      }
      r.value[static_cast<std::size_t>(m * cols + j)] = s;
      r.magnitude[static_cast<std::size_t>(m * cols + j)] = mag;
    }
  return r;
}

// |got - (alpha * want + y0)| within the f32 accumulation bound over `inner` terms (+ f16 output rounding).
void expect_close(const Tensor& got, const Reference& want, const Tensor& y0, const MatmulOptions& opt,
                  std::int64_t inner, const std::string& what) {
  const Tensor g = got.to(DType::F64), y = y0.to(DType::F64);
  const double eps = std::ldexp(1.0, -24), out_eps = got.dtype() == DType::F16 ? std::ldexp(1.0, -11) : 0.0;
  int bad = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    const auto u = static_cast<std::size_t>(i);
    const double base = opt.accumulate ? y.data<double>()[i] : 0.0;
    const double expect = opt.alpha * want.value[u] + base;
    const double bound = 2.0 * (static_cast<double>(inner) + 2.0) * eps *
                             (std::fabs(opt.alpha) * want.magnitude[u] + std::fabs(base)) +
                         out_eps * std::fabs(expect) + 1e-30;
    const double err = std::fabs(g.data<double>()[i] - expect);
    if (!(err <= bound) && ++bad <= 3)
      ADD_FAILURE() << what << ": element " << i << " got " << g.data<double>()[i] << ", want " << expect
                    << " (|err| " << err << " > bound " << bound << ")";
  }
  EXPECT_EQ(bad, 0) << what;
}

struct Shape2 {
  std::int64_t N, K;
};

TEST(Nf4MatmulRef, DecodeIsBitIdenticalToTheIndependentDecodeOnEveryIsa) {
  for (bool dq : {false, true}) {
    const Nf4TestData d = random_nf4(7, 201, dq, 3);  // 1407 elements: odd, 22 blocks, last one partial
    const Nf4Quantized q = d.quantized();
    const Tensor want = d.decode();
    const Tensor whole = dequantize_nf4(q);
    EXPECT_EQ(std::memcmp(whole.raw(), want.raw(), want.nbytes()), 0) << "dequantize_nf4 dq=" << dq;
    const ref::Nf4BlockScales scales(q);
    for (const auto& isa : machine_isas()) {
      IsaScope scope(isa);
      // Whole tensor, and ragged windows starting mid-block / mid-byte.
      for (auto [begin, count] : {std::pair<std::int64_t, std::int64_t>{0, 1407}, {1, 1406}, {63, 130}, {64, 640},
                                  {201, 201}, {1300, 107}, {5, 0}}) {
        std::vector<float> got(static_cast<std::size_t>(count) + 1, -7.0f);
        ref::nf4_decode(q, scales, begin, count, got.data());
        EXPECT_EQ(std::memcmp(got.data(), want.data<float>() + begin, static_cast<std::size_t>(count) * 4), 0)
            << isa << " dq=" << dq << " begin " << begin << " count " << count;
        EXPECT_EQ(got[static_cast<std::size_t>(count)], -7.0f) << "wrote past the end: " << isa;
      }
    }
  }
}

TEST(Nf4MatmulRef, ForwardAndInputGradientMatchDequantizeThenMatmul) {
  // (N, K): ragged K (100, 129 odd -> blocks straddle rows), tiny, aligned (fused GEMV: one block, odd N; 3 blocks
  // per row; odd N = 301 above the threading threshold, rows split unevenly), and K = 4096 (256-row panels: 2 panels
  // for N = 300, the second one partial; GEMV above the threading threshold).
  const std::vector<Shape2> shapes = {{37, 100}, {33, 129}, {5, 7}, {7, 64}, {33, 192}, {64, 256}, {301, 1024},
                                      {300, 4096}};
  const auto isas = machine_isas();
  int cases = 0;
  for (const auto& isa : isas) {
    IsaScope scope(isa);
    for (const auto& s : shapes)
      for (bool dq : {false, true}) {
        // The big shape covers panels and threads, which do not depend on the kernel set: best set only.
        if (s.K == 4096 && isa != isas.back()) continue;
        const Nf4TestData d = random_nf4(s.N, s.K, dq, static_cast<std::uint64_t>(s.N * 7 + s.K));
        const Nf4Quantized q = d.quantized();
        const Tensor W = d.decode().to(DType::F64);
        const double* w = W.data<double>();
        for (std::int64_t M : {1, 2, 3, 4, 5, 64}) {
          const bool big = s.K == 4096;  // one case per path: it is there for panels and threading
          if (big && M != 1 && M != 64) continue;
          if (s.N == 301 && M > 4) continue;  // there for the threaded GEMV
          for (const MatmulOptions opt : {MatmulOptions{1.0f, false}, MatmulOptions{-0.75f, true}}) {
            if (big && opt.accumulate) continue;
            const std::string what = isa + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
                                     " M=" + std::to_string(M) + " dq=" + std::to_string(dq) +
                                     (opt.accumulate ? " alpha=-0.75 accumulate" : "");
            // Forward: Y[M,N] = alpha * X * W^T (+Y)
            const Tensor x = random_tensor({M, s.K}, 11 + static_cast<std::uint64_t>(M));
            const Tensor y0 = random_tensor({M, s.N}, 12);
            Tensor y = y0.clone();
            ref::nf4_matmul(x, q, y, opt);
            expect_close(y, naive(x.to(DType::F64), M, s.N, s.K, [&](auto n, auto k) { return w[n * s.K + k]; }), y0,
                         opt, s.K, "forward " + what);
            // Input gradient: dX[M,K] = alpha * dY * W (+dX)
            const Tensor dy = random_tensor({M, s.N}, 13 + static_cast<std::uint64_t>(M));
            const Tensor dx0 = random_tensor({M, s.K}, 14);
            Tensor dx = dx0.clone();
            ref::nf4_matmul_backward(q, dy, dx, opt);
            expect_close(dx, naive(dy.to(DType::F64), M, s.K, s.N, [&](auto k, auto n) { return w[n * s.K + k]; }),
                         dx0, opt, s.N, "dX " + what);
            cases += 2;
          }
        }
      }
  }
  EXPECT_GT(cases, 0);
}

TEST(Nf4MatmulRef, KernelOrderRoundTripsAndTransposesEachGroup) {
  std::vector<float> in(128), k(128), back(128);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  for (const auto& isa : machine_isas()) {
    IsaScope scope(isa);
    const ref::Nf4KernelOrder order = ref::nf4_gemv_kernels().order;
    const std::int64_t g = order.lanes * order.per_lane;
    ASSERT_EQ(64 % g, 0) << isa;
    ref::nf4_gemv_to_kernel_order(in.data(), k.data(), 128, order);
    for (std::int64_t i = 0; i < 128; ++i) {  // slot e*lanes + j of each group holds element per_lane*j + e
      const std::int64_t base = i / g * g, e = i % g / order.lanes, j = i % order.lanes;
      EXPECT_EQ(k[static_cast<std::size_t>(i)], static_cast<float>(base + order.per_lane * j + e)) << isa << " " << i;
    }
    ref::nf4_gemv_from_kernel_order(k.data(), back.data(), 128, order);
    EXPECT_EQ(back, in) << isa;
  }
}

TEST(Nf4MatmulRef, FusedGemvIsIndependentOfTheCallingThread) {
  // Several threads run GEMVs at once: one gets the pool, the others run on their own threads; all must agree with
  // a run alone (same partition, so bit for bit).
  const Nf4Quantized q = random_nf4(301, 1024, true, 21).quantized();
  const Tensor x = random_tensor({2, 1024}, 22), dy = random_tensor({2, 301}, 23);
  Tensor y_alone = Tensor::zeros({2, 301}), dx_alone = Tensor::zeros({2, 1024});
  ref::nf4_matmul(x, q, y_alone);
  ref::nf4_matmul_backward(q, dy, dx_alone);
  std::vector<Tensor> ys, dxs;
  for (int t = 0; t < 4; ++t) {
    ys.push_back(Tensor::zeros({2, 301}));
    dxs.push_back(Tensor::zeros({2, 1024}));
  }
  {
    std::vector<std::jthread> callers;
    for (int t = 0; t < 4; ++t)
      callers.emplace_back([&, t] {
        for (int rep = 0; rep < 20; ++rep) {
          ref::nf4_matmul(x, q, ys[static_cast<std::size_t>(t)]);
          ref::nf4_matmul_backward(q, dy, dxs[static_cast<std::size_t>(t)]);
        }
      });
  }
  for (int t = 0; t < 4; ++t) {
    const auto u = static_cast<std::size_t>(t);
    EXPECT_EQ(std::memcmp(ys[u].data<float>(), y_alone.data<float>(), 2 * 301 * 4), 0) << t;
    EXPECT_EQ(std::memcmp(dxs[u].data<float>(), dx_alone.data<float>(), 2 * 1024 * 4), 0) << t;
  }
}

TEST(Nf4MatmulRef, HalfStorageIsWidenedAndRoundedOnce) {
  const Nf4TestData d = random_nf4(48, 192, true, 5);
  const Nf4Quantized q = d.quantized();
  const Tensor W = d.decode().to(DType::F64);
  const double* w = W.data<double>();
  for (std::int64_t M : {2, 9}) {
    const Tensor x = random_tensor({M, 192}, 6, -1.0f, 1.0f, DType::F16);
    const Tensor y0 = random_tensor({M, 48}, 7, -1.0f, 1.0f, DType::F16);
    Tensor y = y0.clone();
    const MatmulOptions opt{0.5f, true};
    ref::nf4_matmul(x, q, y, opt);
    ASSERT_EQ(y.dtype(), DType::F16);
    expect_close(y, naive(x.to(DType::F64), M, 48, 192, [&](auto n, auto k) { return w[n * 192 + k]; }), y0, opt, 192,
                 "f16 M=" + std::to_string(M));
  }
}

TEST(Nf4MatmulRef, RejectsMismatchedShapesNamingThem) {
  const Nf4Quantized q = random_nf4(8, 64, false, 1).quantized();
  Tensor x = Tensor::zeros({2, 63}), y = Tensor::zeros({2, 8});
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ref::nf4_matmul(x, q, y); }), {"ref::nf4_matmul", "[2, 63]", "[8, 64]"}));
  Nf4Quantized broken = q;
  broken.codes.pop_back();
  Tensor x_ok = Tensor::zeros({2, 64});
  EXPECT_THROW(ref::nf4_matmul(x_ok, broken, y), ShapeError);
  Tensor dx = Tensor::zeros({2, 64}), dy_i32 = Tensor::zeros({2, 8}, DType::I32);
  EXPECT_THROW(ref::nf4_matmul_backward(q, dy_i32, dx), ShapeError);
}

}  // namespace
