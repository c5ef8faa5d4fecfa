#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// NF4 dequant-GEMM (forward, GEMV and tiled paths), input gradient and dequantize on the GPU vs a CPU decode of
// the same NF4 data written here from the bitsandbytes layout (independent of the library's quantizer), then
// Eigen matmuls on the decoded weight.
#include <cmath>
#include <fstream>

#include "common/test_data.h"

#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/nf4_matmul.h"
#include "host/ref/eigen_view.h"
#include "host/ref/matmul.h"
#include "shaders/common/nf4_codebook.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

struct Nf4Data {
  Shape shape;
  std::vector<std::uint8_t> codes, absmax_q;
  std::vector<float> absmax, nested, code_map;
  float offset = 0;
  bool dq = false;
  // The library's one NF4 representation of these bytes (an arbitrary code map, to test the kernel's lookup).
  Nf4Quantized quantized() const {
    Nf4Quantized q;
    q.shape = shape;
    q.codes = codes;
    q.double_quant = dq;
    if (dq) {
      q.dq.absmax_q = absmax_q;
      q.dq.nested_absmax = nested;
      q.dq.code_map = code_map;
      q.dq.offset = offset;
    } else {
      q.absmax = absmax;
    }
    return q;
  }
  // CPU decode: bitsandbytes computes code * absmax in fp32, absmax = (map[q] * scale) + offset in fp32.
  Tensor decode() const {
    Tensor w = Tensor::zeros(shape);
    float* out = w.data<float>();
    for (std::int64_t e = 0; e < w.numel(); ++e) {
      const std::uint8_t byte = codes[static_cast<std::size_t>(e / 2)];
      const int code = (e % 2 == 0) ? (byte >> 4) : (byte & 0xf);
      const std::size_t b = static_cast<std::size_t>(e / 64);
      float am;
      if (dq) {
        volatile float scaled = code_map[absmax_q[b]] * nested[b / 256];
        am = scaled + offset;
      } else {
        am = absmax[b];
      }
      out[e] = kNf4Codebook[code] * am;
    }
    return w;
  }
};

Nf4Data random_nf4(std::int64_t N, std::int64_t K, bool dq, std::uint64_t seed) {
  Nf4Data d;
  d.shape = {N, K};
  d.dq = dq;
  const std::int64_t n = N * K, blocks = (n + 63) / 64;
  Tensor r = random_tensor({(n + 1) / 2 + 3 * blocks + 256}, seed, 0.0f, 1.0f);
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

Tensor transpose(const Tensor& t) {
  Tensor o = Tensor::zeros({t.dim(1), t.dim(0)});
  as_matrix(o) = as_matrix(t).transpose();
  return o;
}

struct Nf4Case {
  std::string name;
  std::int64_t M, N, K;
  bool dq;
  DType dtype;
};
std::ostream& operator<<(std::ostream& os, const Nf4Case& c) { return os << c.name; }

// Tolerances. f32: both sides accumulate K (or N) fp32 products of identical decoded weights in different
// orders: relative error vs max(|ref|, sqrt(K) * mean|w|) <= 1e-5. f16 activations: inputs are identical f16
// values, the output is rounded to f16 once: max_rel 1e-3, NMSE 1e-6 (DESIGN.md: fp16 paths <= 2e-3).
Tolerance tol_for(const Nf4Case& c, std::int64_t reduce_len) {
  Tolerance t;
  t.rel_floor = std::sqrt(static_cast<double>(reduce_len)) * 0.3;
  t.max_rel = c.dtype == DType::F32 ? 1e-5 : 1e-3;
  t.nmse = c.dtype == DType::F32 ? 1e-10 : 1e-6;
  return t;
}

class Nf4Matmul : public GpuTest, public ::testing::WithParamInterface<Nf4Case> {};

TEST_P(Nf4Matmul, ForwardAndInputGradientMatchReference) {
  const auto& c = GetParam();
  Nf4Data d = random_nf4(c.N, c.K, c.dq, 11);
  Tensor W = d.decode();
  auto w = ops::upload_nf4(dev(), arena(), d.quantized(), "test.weight");

  Tensor x = random_tensor({c.M, c.K}, 12, -1, 1, c.dtype);
  Tensor y0 = random_tensor({c.M, c.N}, 13, -1, 1, c.dtype);
  Tensor dy = random_tensor({c.M, c.N}, 14, -1, 1, c.dtype);
  for (bool acc : {false, true}) {
    MatmulOptions opt{acc ? 0.5f : 1.0f, acc};
    Tensor want_y = y0.to(DType::F32);
    ref::matmul(x.to(DType::F32), W, want_y, opt);
    Tensor want_dx = acc ? x.to(DType::F32) : Tensor::zeros({c.M, c.K});
    ref::matmul(dy.to(DType::F32), transpose(W), want_dx, opt);

    auto dx_dev = up(x), y_dev = up(y0), dy_dev = up(dy), gx_dev = up(acc ? x : Tensor::zeros({c.M, c.K}, c.dtype));
    vk::Sequence seq(dev(), bench_mode());
    ops::nf4_matmul(seq, dx_dev, w, y_dev, opt);
    ops::nf4_matmul_backward(seq, w, dy_dev, gx_dev, opt);
    seq.submit();
    EXPECT_TRUE(within(down(y_dev).to(DType::F32), want_y, tol_for(c, c.K))) << c << " forward acc=" << acc;
    EXPECT_TRUE(within(down(gx_dev).to(DType::F32), want_dx, tol_for(c, c.N))) << c << " dX acc=" << acc;
    if (bench_mode())
      for (auto& t : seq.timings()) std::printf("[bench] %s %s: %.3f ms\n", c.name.c_str(), t.label.c_str(), t.ms);
  }
}

std::vector<Nf4Case> nf4_cases() {
  std::vector<Nf4Case> v;
  for (bool dq : {false, true}) {
    const std::string q = dq ? "_dq" : "_fp32absmax";
    v.push_back({"gemv_m1_aligned" + q, 1, 67, 128, dq, DType::F32});
    v.push_back({"gemv_m3_k172" + q, 3, 33, 172, dq, DType::F32});  // blocks span rows, rows start mid-byte
    v.push_back({"gemv_m4_k63" + q, 4, 9, 63, dq, DType::F32});     // odd element count: padded last nibble
    v.push_back({"tiled_m16" + q, 16, 96, 256, dq, DType::F32});
    v.push_back({"tiled_m37_k172" + q, 37, 50, 172, dq, DType::F32});
    v.push_back({"tiled_m130_ragged" + q, 130, 72, 200, dq, DType::F32});
  }
  v.push_back({"gemv_m2_f16", 2, 40, 96, true, DType::F16});
  v.push_back({"tiled_m33_f16", 33, 70, 136, true, DType::F16});
  // More than 256 absmax blocks: exercises the nested (second-level) scale index.
  v.push_back({"tiled_many_nested_blocks", 8, 300, 128, true, DType::F32});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, Nf4Matmul, ::testing::ValuesIn(nf4_cases()),
                         [](const ::testing::TestParamInfo<Nf4Case>& p) { return p.param.name; });

TEST_F(GpuTest, Nf4DequantizeIsBitExact) {
  // One fp32 multiply per element on both sides, absmax rebuilt with two separately rounded fp32 ops: exact.
  for (bool dq : {false, true}) {
    for (auto [N, K] : {std::pair<std::int64_t, std::int64_t>{5, 172}, {300, 128}, {1, 63}}) {
      Nf4Data d = random_nf4(N, K, dq, 21 + static_cast<std::uint64_t>(N));
      auto w = ops::upload_nf4(dev(), arena(), d.quantized(), "dq.weight");
      auto out = ops::allocate(arena(), {N, K}, DType::F32, "out");
      vk::Sequence seq(dev());
      ops::nf4_dequantize(seq, w, out);
      seq.submit();
      Tensor got = down(out), want = d.decode();
      ASSERT_EQ(std::memcmp(got.raw(), want.raw(), got.nbytes()), 0) << "N=" << N << " K=" << K << " dq=" << dq;
    }
  }
}

TEST_F(GpuTest, Nf4RejectsMismatchedShapesNamingWeight) {
  Nf4Data d = random_nf4(8, 64, false, 3);
  auto w = ops::upload_nf4(dev(), arena(), d.quantized(), "layers.0.attention.wq");
  auto x = ops::allocate(arena(), {2, 60}, DType::F32, "x");
  auto y = ops::allocate(arena(), {2, 8}, DType::F32, "y");
  vk::Sequence seq(dev());
  try {
    ops::nf4_matmul(seq, x, w, y);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("layers.0.attention.wq"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 60]"), std::string::npos) << m;
    EXPECT_NE(m.find("[8, 64]"), std::string::npos) << m;
  }
  auto short_absmax = d.quantized();
  short_absmax.absmax.pop_back();
  EXPECT_THROW(ops::upload_nf4(dev(), arena(), short_absmax, "short.absmax"), ShapeError);
}

}  // namespace

namespace {
// The GEMV has two variants (subgroup-reduced rows, lane-per-row); the device profile picks one, so run the
// other one here through a profile override on a second device.
TEST(Nf4GemvVariants, BothVariantsMatchReference) {
  POCKETLORA_REQUIRE_GPU();
  TempDir tmp;
  for (int sub : {0, 1}) {
    {
      std::ofstream(tmp / "p.json") << "{\"params\": {\"nf4.gemv_subgroup\": " << sub << "}}";
    }
    vk::DeviceOptions o;
    o.profile_override = tmp / "p.json";
    OwnDevice own(o);
    vk::Device& d = own.dev();
    vk::Arena& ar = own.arena();
    for (std::int64_t M : {1, 2, 3, 4}) {
      Nf4Data nd = random_nf4(45, 192, true, 30 + static_cast<std::uint64_t>(M));
      auto w = ops::upload_nf4(d, ar, nd.quantized(), "variant.weight");
      Tensor x = random_tensor({M, 192}, 31);
      Tensor want = Tensor::zeros({M, 45});
      ref::matmul(x, nd.decode(), want);
      auto xd = ops::upload(d, ar, x, "x");
      auto yd = ops::allocate(ar, {M, 45}, DType::F32, "y");
      vk::Sequence seq(d);
      ops::nf4_matmul(seq, xd, w, yd);
      seq.submit();
      Tolerance t;
      t.rel_floor = std::sqrt(192.0) * 0.3;
      t.max_rel = 1e-5;
      EXPECT_TRUE(within(ops::download(d, yd), want, t)) << "subgroup=" << sub << " M=" << M;
    }
  }
}
}  // namespace

namespace {
// The shared-memory tile variant is what desktop profiles select; lavapipe's profile does not, so run it here
// through an override (same tolerance as the register-tiled cases above).
TEST(Nf4SharedTiles, MatchesReference) {
  POCKETLORA_REQUIRE_GPU();
  TempDir tmp;
  {
    std::ofstream(tmp / "p.json") << R"({"params": {"nf4.shared_tiles": 1, "nf4.shared_bk": 16, "nf4.wg_x": 4,
                                          "nf4.wg_y": 4, "nf4.tm": 2, "nf4.tn": 4}})";
  }
  vk::DeviceOptions o;
  o.profile_override = tmp / "p.json";
  OwnDevice own(o);
  vk::Device& d = own.dev();
  vk::Arena& ar = own.arena();
  for (auto [M, N, K] : {std::array<std::int64_t, 3>{5, 9, 24}, {37, 50, 136}, {64, 33, 264}}) {
    for (bool dq : {false, true}) {
      Nf4Data nd = random_nf4(N, K, dq, 40 + static_cast<std::uint64_t>(K));
      auto w = ops::upload_nf4(d, ar, nd.quantized(), "shared.weight");
      Tensor x = random_tensor({M, K}, 41), y0 = random_tensor({M, N}, 42);
      Tensor want = y0.clone();
      ref::matmul(x, nd.decode(), want, {0.5f, true});
      auto xd = ops::upload(d, ar, x, "x"), yd = ops::upload(d, ar, y0, "y");
      vk::Sequence seq(d, true);
      ops::nf4_matmul(seq, xd, w, yd, {0.5f, true});
      seq.submit();
      ASSERT_FALSE(seq.timings().empty());
      EXPECT_EQ(seq.timings()[0].label, "nf4_matmul_shared");
      Tolerance t;
      t.rel_floor = std::sqrt(static_cast<double>(K)) * 0.3;
      t.max_rel = 1e-5;
      EXPECT_TRUE(within(ops::download(d, yd), want, t)) << "M=" << M << " N=" << N << " K=" << K << " dq=" << dq;
    }
  }
}
}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
