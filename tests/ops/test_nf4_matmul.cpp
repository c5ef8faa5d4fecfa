// NF4 dequant-GEMM (forward on the GEMV and tiled paths, and their kernel variants), its input gradient and the
// dequantize as op cases (tests/harness/op_case.h). The weight is the shared NF4 test data (tests/common/
// nf4_test_data.h: bitsandbytes-layout bytes written independently of the library's quantizer); the reference is
// its independent CPU decode followed by ref::matmul. The CPU NF4 kernels: tests/ref/test_nf4_matmul_ref.cpp.
#include <array>
#include <cmath>

#include "common/error_message.h"
#include "common/nf4_test_data.h"
#include "harness/op_case.h"
#include "host/ref/matmul.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/nf4_matmul.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// Bytes of the NF4 weight a kernel reads: 4-bit codes and the block scales.
double nf4_weight_bytes(const Nf4TestData& d) {
  const auto n = static_cast<double>(d.codes.size());
  const auto blocks = static_cast<double>(d.absmax_q.size());
  return n + (d.double_quant ? blocks + 4.0 * static_cast<double>(d.nested.size()) + 4.0 * 256 : 4.0 * blocks);
}

struct Nf4MatmulSpec {
  std::string label;
  std::int64_t M, N, K;
  bool double_quant;
  DType dtype = DType::F32;
  bool accumulate = false;  // alpha 0.5 into random Y (and into dX = X), else alpha 1 into zeros
  std::uint64_t seed_w = 11, seed_x = 12, seed_y = 13;
  std::string profile_override;  // a kernel variant the device's own profile does not pick
};

// Y [M,N] = alpha * X * dequant(W)^T (+Y0) and dX [M,K] = alpha * dY * dequant(W) (+dX0), in f32 or f16. Gradient
// check (f32, small): L = sum(dY .* Y), whose gradient is the reference's dX (and dY for Y0 when accumulating).
class Nf4MatmulCase : public OpCase {
 public:
  explicit Nf4MatmulCase(Nf4MatmulSpec s)
      : s_(std::move(s)), w_(random_nf4(s_.N, s_.K, s_.double_quant, s_.seed_w)), decoded_(w_.decode()) {
    name = "nf4_matmul/" + s_.label + (s_.accumulate ? "_acc" : "");
    profile_override = s_.profile_override;
    if (has_gradcheck()) decoded64_ = decoded_.to(DType::F64);
  }
  std::vector<Tensor> inputs() const override {
    Tensor x = random_tensor({s_.M, s_.K}, s_.seed_x, -1, 1, s_.dtype);
    Tensor y0 = s_.accumulate ? random_tensor({s_.M, s_.N}, s_.seed_y, -1, 1, s_.dtype)
                              : Tensor::zeros({s_.M, s_.N}, s_.dtype);
    Tensor dy = random_tensor({s_.M, s_.N}, 14, -1, 1, s_.dtype);
    Tensor dx0 = s_.accumulate ? x.clone() : Tensor::zeros({s_.M, s_.K}, s_.dtype);
    return {x, y0, dy, dx0};
  }
  std::vector<std::string> output_names() const override { return {"y", "dx"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor y = in[1].to(DType::F32), dx = in[3].to(DType::F32);
    ref::matmul(in[0].to(DType::F32), decoded_, y, opt());
    ref::matmul(in[2].to(DType::F32), decoded_, dx, backward_opt());
    return {y, dx};
  }
  // Both sides accumulate K (forward) or N (dX) f32 products of identical decoded weights in different orders;
  // |w| ~ 0.3 (codebook values times absmax below ~1): rel_floor sqrt(terms) * 0.3 (dot_product_tolerance).
  Tolerance tolerance(std::size_t output) const override {
    return dot_product_tolerance(output == 0 ? s_.K : s_.N, 0.3, s_.dtype);
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    const auto w = ops::upload_nf4(run.dev, run.arena, w_.quantized(), "test.weight");
    auto x = run.up(in[0]), y = run.up(in[1]), dy = run.up(in[2]), dx = run.up(in[3]);
    ops::nf4_matmul(run.seq, x, w, y, opt());
    ops::nf4_matmul_backward(run.seq, w, dy, dx, opt());
    return {y, dx};
  }
#endif
  // Small outputs only (the central-difference rounding error grows with |L|: ~eps |L| / h); the kernel variants
  // share the reference of their plain cases.
  bool has_gradcheck() const override {
    return s_.dtype == DType::F32 && s_.M * s_.N <= 128 && s_.profile_override.empty();
  }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor y = s_.accumulate ? in[1].clone() : Tensor::zeros({s_.M, s_.N}, DType::F64);
    ref::matmul(in[0], decoded64_, y, opt());
    return dot(y, in[2]);
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor dx = Tensor::zeros({s_.M, s_.K}, DType::F64);
    ref::matmul(in[2], decoded64_, dx, backward_opt());  // the reference's dX, in f64
    // dY is the loss weight and dX0 is not in the loss: neither is differentiated.
    return {dx, s_.accumulate ? in[2].clone() : Tensor::zeros({s_.M, s_.N}, DType::F64), Tensor(), Tensor()};
  }
  // fp64, h = 1e-6: truncation ~h^2 (the loss is bilinear: none), rounding ~1e-16 |L| / h: |error| < 1e-8.
  GradTolerance grad_tolerance() const override { return {1e-8}; }
  double flops() const override { return 4.0 * static_cast<double>(s_.M * s_.N * s_.K); }
  double bytes() const override {
    const double e = static_cast<double>(dtype_size(s_.dtype)), rw = s_.accumulate ? 2.0 : 1.0;
    return 2.0 * nf4_weight_bytes(w_) +
           e * static_cast<double>(s_.M * s_.K * (1 + rw) + s_.M * s_.N * (1 + rw));
  }

 private:
  MatmulOptions opt() const { return {s_.accumulate ? 0.5f : 1.0f, s_.accumulate}; }
  // dX [M,K] = alpha * dY [M,N] * W [N,K]: W is op(B) stored [N,K] with N the reduction: trans_b.
  MatmulOptions backward_opt() const {
    MatmulOptions o = opt();
    o.trans_b = true;
    return o;
  }
  Nf4MatmulSpec s_;
  Nf4TestData w_;
  Tensor decoded_, decoded64_;
};

// W_f32 [N,K] = dequant(W). One fp32 multiply per element on both sides, absmax rebuilt with two separately
// rounded fp32 operations on both sides: bit for bit (max_abs 0; no zero of either sign can differ: absmax > 0).
class Nf4DequantizeCase : public OpCase {
 public:
  Nf4DequantizeCase(std::int64_t N, std::int64_t K, bool double_quant)
      : w_(random_nf4(N, K, double_quant, 21 + static_cast<std::uint64_t>(N))) {
    name = "nf4_dequantize/" + std::to_string(N) + "x" + std::to_string(K) + (double_quant ? "_dq" : "_fp32absmax");
  }
  std::vector<Tensor> inputs() const override { return {}; }
  std::vector<std::string> output_names() const override { return {"w"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>&) const override { return {w_.decode()}; }
  Tolerance tolerance(std::size_t) const override {
    Tolerance t;
    t.max_abs = 0;
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>&) const override {
    const auto w = ops::upload_nf4(run.dev, run.arena, w_.quantized(), "dq.weight");
    auto out = run.zeros(w_.shape, DType::F32);
    ops::nf4_dequantize(run.seq, w, out);
    return {out};
  }
#endif
  double flops() const override { return static_cast<double>(shape_numel(w_.shape)); }
  double bytes() const override { return nf4_weight_bytes(w_) + 4.0 * static_cast<double>(shape_numel(w_.shape)); }

 private:
  Nf4TestData w_;
};

// The shared-memory tile variant is what desktop profiles select; lavapipe's profile does not.
constexpr const char* kSharedTiles =
    R"("nf4.shared_tiles": 1, "nf4.shared_bk": 16, "nf4.wg_x": 4, "nf4.wg_y": 4, "nf4.tm": 2, "nf4.tn": 4)";

std::vector<OpCasePtr> nf4_cases() {
  std::vector<OpCasePtr> v;
  auto add = [&](Nf4MatmulSpec s) {
    for (bool acc : {false, true}) {
      Nf4MatmulSpec c = s;
      c.accumulate = acc;
      v.push_back(std::make_shared<Nf4MatmulCase>(c));
    }
  };
  for (bool dq : {false, true}) {
    const std::string q = dq ? "_dq" : "_fp32absmax";
    add({"gemv_m1_aligned" + q, 1, 67, 128, dq});
    add({"gemv_m3_k172" + q, 3, 33, 172, dq});  // blocks span rows, rows start mid-byte
    add({"gemv_m4_k63" + q, 4, 9, 63, dq});     // odd element count: padded last nibble
    add({"tiled_m16" + q, 16, 96, 256, dq});
    add({"tiled_m37_k172" + q, 37, 50, 172, dq});
    add({"tiled_m130_ragged" + q, 130, 72, 200, dq});
  }
  add({"gemv_m2_f16", 2, 40, 96, true, DType::F16});
  add({"tiled_m33_f16", 33, 70, 136, true, DType::F16});
  // More than 256 absmax blocks: exercises the nested (second-level) scale index.
  add({"tiled_many_nested_blocks", 8, 300, 128, true});
  // The GEMV has two variants (subgroup-reduced rows, lane-per-row); the device profile picks one: both here.
  for (int sub : {0, 1})
    for (std::int64_t M : {1, 2, 3, 4}) {
      Nf4MatmulSpec s{"gemv_subgroup" + std::to_string(sub) + "_m" + std::to_string(M), M, 45, 192, true};
      s.seed_w = 30 + static_cast<std::uint64_t>(M);
      s.seed_x = 31;
      s.profile_override = "\"nf4.gemv_subgroup\": " + std::to_string(sub);
      v.push_back(std::make_shared<Nf4MatmulCase>(s));
    }
  // The shared-memory tile variant (accumulating, as the linear layers use it).
  for (auto [M, N, K] : {std::array<std::int64_t, 3>{5, 9, 24}, {37, 50, 136}, {64, 33, 264}})
    for (bool dq : {false, true}) {
      Nf4MatmulSpec s{"shared_tiles_" + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
                          (dq ? "_dq" : "_fp32absmax"),
                      M, N, K, dq};
      s.accumulate = true;
      s.seed_w = 40 + static_cast<std::uint64_t>(K);
      s.seed_x = 41;
      s.seed_y = 42;
      s.profile_override = kSharedTiles;
      v.push_back(std::make_shared<Nf4MatmulCase>(s));
    }
  for (bool dq : {false, true})
    for (auto [N, K] : {std::pair<std::int64_t, std::int64_t>{5, 172}, {300, 128}, {1, 63}})
      v.push_back(std::make_shared<Nf4DequantizeCase>(N, K, dq));
  return v;
}

POCKETLORA_OP_CASES(Nf4Matmul, nf4_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, Nf4RejectsMismatchedShapesNamingWeight) {
  const Nf4TestData d = random_nf4(8, 64, false, 3);
  auto w = ops::upload_nf4(dev(), arena(), d.quantized(), "layers.0.attention.wq");
  auto x = ops::allocate(arena(), {2, 60}, DType::F32, "x");
  auto y = ops::allocate(arena(), {2, 8}, DType::F32, "y");
  vk::Sequence seq(dev());
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ops::nf4_matmul(seq, x, w, y); }),
                       {"layers.0.attention.wq", "[2, 60]", "[8, 64]"}));
  auto short_absmax = d.quantized();
  short_absmax.absmax.pop_back();
  EXPECT_THROW(ops::upload_nf4(dev(), arena(), short_absmax, "short.absmax"), ShapeError);
}

TEST(Nf4SharedTiles, OverrideSelectsTheSharedKernel) {
  // The shared-tile cases above compare numbers; this checks that the override really runs that kernel.
  POCKETLORA_REQUIRE_GPU();
  ProfileOverrideDevice own(kSharedTiles);
  const Nf4TestData d = random_nf4(9, 24, true, 64);
  const auto w = ops::upload_nf4(own.dev(), own.arena(), d.quantized(), "shared.weight");
  auto x = ops::upload(own.dev(), own.arena(), random_tensor({5, 24}, 41), "x");
  auto y = ops::allocate(own.arena(), {5, 9}, DType::F32, "y");
  vk::Sequence seq(own.dev(), true);
  ops::nf4_matmul(seq, x, w, y);
  seq.submit();
  ASSERT_FALSE(seq.timings().empty());
  EXPECT_EQ(seq.timings()[0].label, "nf4_matmul_shared");
}
#endif

}  // namespace
