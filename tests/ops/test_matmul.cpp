// matmul C = alpha * op(A) * op(B)^T (+C) as op cases (tests/harness/op_case.h): GPU vs the reference
// (host/ref/matmul.h), the reference backward vs finite differences, perf rows. The reference's transposed forms
// against explicit transposes: tests/ref/test_matmul_ref.cpp.
#include <array>
#include <cmath>

#include "common/error_message.h"
#include "harness/op_case.h"
#include "host/ref/matmul.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/matmul.h"
#include "host/ref/eigen_view.h"
#include "runtime/command.h"
#include "runtime/error.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// C [M,N] = alpha * op(A) * op(B)^T (+C0), A, B and C each in f32 or f16 (`dtypes`). Gradient check (f32,
// untransposed, small): L = sum(U .* C) for a fixed random U; dA, dB from ref::matmul_backward with dC = U, dC0 = U
// when accumulating.
class MatmulCase : public OpCase {
 public:
  MatmulCase(const std::string& label, std::int64_t M, std::int64_t N, std::int64_t K, std::array<DType, 3> dtypes,
             MatmulOptions opt, std::uint64_t seed_a, std::uint64_t seed_b, bool random_c0)
      : M_(M), N_(N), K_(K), dt_(dtypes), opt_(opt), seed_a_(seed_a), seed_b_(seed_b), random_c0_(random_c0) {
    name = "matmul/" + label + dtype_suffix() + (opt.accumulate ? "_acc" : "");
  }
  MatmulCase(const std::string& label, std::int64_t M, std::int64_t N, std::int64_t K, DType dtype,
             MatmulOptions opt, std::uint64_t seed_a, std::uint64_t seed_b, bool random_c0)
      : MatmulCase(label, M, N, K, {dtype, dtype, dtype}, opt, seed_a, seed_b, random_c0) {}
  std::vector<Tensor> inputs() const override {
    return {random_tensor(opt_.trans_a ? Shape{K_, M_} : Shape{M_, K_}, seed_a_, -1, 1, dt_[0]),
            random_tensor(opt_.trans_b ? Shape{K_, N_} : Shape{N_, K_}, seed_b_, -1, 1, dt_[1]),
            random_c0_ ? random_tensor({M_, N_}, 3, -1, 1, dt_[2]) : Tensor::zeros({M_, N_}, dt_[2])};
  }
  std::vector<std::string> output_names() const override { return {"c"}; }
  // One dtype: the reference kernel itself (f32 through BLAS). Mixed dtypes: the f64 product of the same
  // (f16-exact) inputs, the yardstick for both the GPU kernel here and ref::matmul in test_matmul_ref.cpp.
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    if (mixed()) {
      Tensor c = in[2].to(DType::F64);
      ref::matmul(in[0].to(DType::F64), in[1].to(DType::F64), c, opt_);
      return {c};
    }
    Tensor c = in[2].clone();
    ref::matmul(in[0], in[1], c, opt_);
    return {c};
  }
  // K products per output, f32 accumulation in different orders (the GPU in order with fma, the reference in
  // blocks): inputs in [-1, 1] make |product| ~1/3, rel_floor sqrt(K) (see dot_product_tolerance for the limits).
  // The inputs are the same values on both sides whatever their storage, so C's dtype alone sets the tolerance
  // (an f16 C: one rounding to 2^-11).
  Tolerance tolerance(std::size_t) const override { return dot_product_tolerance(K_, 1.0, dt_[2]); }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto a = run.up(in[0]), b = run.up(in[1]), c = run.up(in[2]);
    ops::matmul(run.seq, a, b, c, opt_);
    return {c};
  }
#endif
  // ref::matmul_backward has no transposed forms; small outputs only (the central-difference rounding error
  // grows with |L|: ~eps |L| / h).
  bool has_gradcheck() const override {
    return !mixed() && dt_[0] == DType::F32 && !opt_.trans_a && !opt_.trans_b && M_ * N_ <= 128;
  }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor c = opt_.accumulate ? in[2].clone() : Tensor::zeros({M_, N_}, DType::F64);
    ref::matmul(in[0], in[1], c, opt_);
    return dot(c, upstream());
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    const Tensor u = upstream();
    Tensor da = Tensor::zeros(in[0].shape(), DType::F64), db = Tensor::zeros(in[1].shape(), DType::F64);
    ref::matmul_backward(in[0], in[1], u, da, db, opt_);
    return {da, db, opt_.accumulate ? u : Tensor::zeros({M_, N_}, DType::F64)};
  }
  // fp64, h = 1e-6: truncation ~h^2, rounding ~1e-16 |L| / h with |L| of order 10: |error| < 1e-8.
  GradTolerance grad_tolerance() const override { return {1e-8}; }
  double flops() const override { return 2.0 * static_cast<double>(M_ * N_ * K_); }
  double bytes() const override {
    return static_cast<double>(M_ * K_ * static_cast<std::int64_t>(dtype_size(dt_[0])) +
                               N_ * K_ * static_cast<std::int64_t>(dtype_size(dt_[1])) +
                               M_ * N_ * (opt_.accumulate ? 2 : 1) *
                               static_cast<std::int64_t>(dtype_size(dt_[2])));
  }

 private:
  bool mixed() const { return dt_[0] != dt_[1] || dt_[1] != dt_[2]; }
  // "_f32" / "_f16" when all three agree (the names the uniform cases always had), else e.g. "_a16_b32_c32".
  std::string dtype_suffix() const {
    const auto bits = [](DType d) { return d == DType::F16 ? std::string("16") : std::string("32"); };
    if (!mixed()) return "_f" + bits(dt_[0]);
    return "_a" + bits(dt_[0]) + "_b" + bits(dt_[1]) + "_c" + bits(dt_[2]);
  }
  Tensor upstream() const { return random_tensor({M_, N_}, 9).to(DType::F64); }
  std::int64_t M_, N_, K_;
  std::array<DType, 3> dt_;
  MatmulOptions opt_;
  std::uint64_t seed_a_, seed_b_;
  bool random_c0_;
};

// The six (A, B, C) storage triples mixing f32 and f16 (the two uniform ones are the cases above).
std::vector<std::array<DType, 3>> mixed_dtype_triples() {
  std::vector<std::array<DType, 3>> v;
  for (int bits = 1; bits < 7; ++bits)
    v.push_back({bits & 1 ? DType::F16 : DType::F32, bits & 2 ? DType::F16 : DType::F32,
                 bits & 4 ? DType::F16 : DType::F32});
  return v;
}

std::vector<OpCasePtr> matmul_cases() {
  std::vector<OpCasePtr> v;
  struct Dims {
    const char* label;
    std::int64_t M, N, K;
  };
  // Plain form, f32 and f16, written (alpha 1) and accumulated (alpha 0.5 into a random C).
  for (DType dt : {DType::F32, DType::F16})
    for (const Dims& d : {Dims{"1x1x1", 1, 1, 1}, Dims{"gemv", 1, 67, 129}, Dims{"ragged", 7, 13, 5},
                          Dims{"odd_tiles", 33, 130, 67}, Dims{"square64", 64, 64, 64}, Dims{"tall", 128, 96, 256}})
      for (bool acc : {false, true})
        v.push_back(std::make_shared<MatmulCase>(d.label, d.M, d.N, d.K, dt, MatmulOptions{acc ? 0.5f : 1.0f, acc},
                                                 1, 2, true));
  // The few-row GEMV kernel on Vulkan (shaders/nn/matmul_gemv.glsl: M <= 4, neither operand transposed, A and C
  // f32, B f32 or f16 as the decoder's linears and f16 head): every row count, K a multiple of 4 (the four-wide
  // loop) or not, N beyond one workgroup's columns, written and accumulated; M 5 is the tiled kernel's again.
  for (std::int64_t M : {1, 2, 3, 4, 5})
    for (std::int64_t K : {128, 131})
      for (DType bt : {DType::F32, DType::F16})
        for (bool acc : {false, true})
          v.push_back(std::make_shared<MatmulCase>(
              "gemv_m" + std::to_string(M) + "_k" + std::to_string(K), M, 300, K,
              std::array<DType, 3>{DType::F32, bt, DType::F32}, MatmulOptions{acc ? 0.5f : 1.0f, acc}, 5, 6, true));
  // The GEMV's other workgroup layouts, by profile override: one subgroup looping over 64 columns and over 20
  // (matmul.gemv_cols; uneven rounds over N 300), and the one-invocation-per-column variant.
  const std::pair<const char*, const char*> gemv_layouts[] = {{"_cols64", R"("matmul.gemv_cols": 64)"},
                                                              {"_cols20", R"("matmul.gemv_cols": 20)"},
                                                              {"_nosubgroup", R"("matmul.gemv_subgroup": 0)"}};
  for (const auto& [suffix, profile] : gemv_layouts)
    for (std::int64_t K : {128, 131}) {
      auto c = std::make_shared<MatmulCase>("gemv_m3_k" + std::to_string(K) + suffix, 3, 300, K,
                                            std::array<DType, 3>{DType::F32, DType::F16, DType::F32},
                                            MatmulOptions{0.5f, true}, 5, 6, true);
      c->profile_override = profile;
      v.push_back(c);
    }
  // Transposed operands (the LoRA / linear-gradient forms), alpha 0.25 into zeros.
  for (const Dims& d : {Dims{"", 7, 13, 5}, Dims{"", 33, 9, 70}, Dims{"", 64, 16, 128}})
    for (int mode = 1; mode < 4; ++mode) {
      MatmulOptions opt;
      opt.alpha = 0.25f;
      opt.trans_a = mode & 1;
      opt.trans_b = mode & 2;
      const std::string label = std::string(opt.trans_a ? "tA" : "") + (opt.trans_b ? "tB" : "") + "_" +
                                std::to_string(d.M) + "x" + std::to_string(d.N) + "x" + std::to_string(d.K);
      v.push_back(std::make_shared<MatmulCase>(label, d.M, d.N, d.K, DType::F32, opt, 40, 41, false));
    }
  // Every mixed (A, B, C) storage triple: written, accumulated into a random C, and the transposed forms (the
  // f16 head: logits = xn · Bᵀ plain, d xn = dlogits · B through trans_b, with B f16 [vocab, dim]).
  for (const auto& dts : mixed_dtype_triples()) {
    v.push_back(std::make_shared<MatmulCase>("ragged", 7, 13, 5, dts, MatmulOptions{}, 1, 2, false));
    v.push_back(std::make_shared<MatmulCase>("odd_tiles", 33, 130, 67, dts, MatmulOptions{0.5f, true}, 1, 2, true));
    for (int mode = 1; mode < 4; ++mode) {
      MatmulOptions opt;
      opt.alpha = 0.25f;
      opt.trans_a = mode & 1;
      opt.trans_b = mode & 2;
      v.push_back(std::make_shared<MatmulCase>(std::string(opt.trans_a ? "tA" : "") + (opt.trans_b ? "tB" : "") +
                                                   "_33x9x70",
                                               33, 9, 70, dts, opt, 40, 41, false));
    }
  }
  return v;
}

POCKETLORA_OP_CASES(Matmul, matmul_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, MatmulResubmitAccumulates) {
  // A recorded sequence is replayed: with accumulate, C grows by A*B^T on every submit.
  Tensor a = random_tensor({5, 9}, 4), b = random_tensor({6, 9}, 5);
  Tensor once = Tensor::zeros({5, 6});
  ref::matmul(a, b, once);
  auto da = up(a), db = up(b), dc = up(Tensor::zeros({5, 6}));
  vk::Sequence seq(dev());
  ops::matmul(seq, da, db, dc, {1.0f, true});
  for (int i = 0; i < 3; ++i) seq.submit();
  Tensor want = once.clone();
  as_matrix(want) *= 3.0f;
  // 9 products per output and three f32 adds of the same values: rel_floor 1 (sqrt(9) * 1/3).
  EXPECT_TRUE(within(down(dc), want, dot_product_tolerance(9, 1.0 / 3, DType::F32)));
}

TEST_F(GpuTest, MatmulOverRowChunkedBMatchesOneBinding) {
  // A head weight B [V, K] split by rows across bindings (upload_row_chunked with a small chunk size: 64 f32 or
  // 128 f16 rows per chunk, the last one ragged) against the same B in one binding. Plain B (logits = xn · Bᵀ):
  // each chunk writes its own columns of C with the same sums, so the results are bit-identical. trans_b (d xn =
  // dlogits · B, also with trans_a): each chunk's part of the reduction is added onto C in turn, a different
  // f32 summation order over V terms (dot_product_tolerance).
  const std::int64_t V = 300, K = 40;
  for (std::int64_t M : {9, 2})  // 2: the plain form through the GEMV kernel, chunk by chunk with c_offset
    for (DType bt : {DType::F32, DType::F16})
      for (int mode = 0; mode < 4; ++mode) {
        MatmulOptions opt;
        opt.trans_b = mode >= 1;
        opt.trans_a = mode == 2;
        opt.accumulate = mode == 3 || mode == 0;
        opt.alpha = 0.5f;
        const Tensor b = random_tensor({V, K}, 61, -1, 1, bt);
        const std::int64_t red = opt.trans_b ? V : K, N = opt.trans_b ? K : V;
        const Tensor a = random_tensor(opt.trans_a ? Shape{red, M} : Shape{M, red}, 62);
        const Tensor c0 = random_tensor({M, N}, 63);
        const auto chunked = ops::upload_row_chunked(dev(), arena(), b, "chunked B", 64 * K * 4);
        ASSERT_GE(chunked.chunks.size(), 3u);
        auto da = up(a), c_one = up(c0), c_chunked = up(c0);
        vk::Sequence seq(dev());
        ops::matmul(seq, da, up(b), c_one, opt);
        ops::matmul(seq, da, chunked, c_chunked, opt);
        seq.submit();
        const std::string what =
            std::string("B ") + dtype_name(bt) + " mode " + std::to_string(mode) + " M " + std::to_string(M);
        if (!opt.trans_b) {
          Tolerance exact;
          exact.max_abs = 0;
          EXPECT_TRUE(within(down(c_chunked), down(c_one), exact)) << what;
        } else {
          EXPECT_TRUE(within(down(c_chunked), down(c_one), dot_product_tolerance(V, 1.0, DType::F32))) << what;
        }
      }
}

TEST_F(GpuTest, MatmulRejectsBadShapesNamingBoth) {
  auto a = ops::allocate(arena(), {4, 8}, DType::F32, "a");
  auto b = ops::allocate(arena(), {3, 7}, DType::F32, "b");
  auto c = ops::allocate(arena(), {4, 3}, DType::F32, "c");
  vk::Sequence seq(dev());
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ops::matmul(seq, a, b, c); }), {"[4, 8]", "[3, 7]", "ops::matmul"}));
  auto i = ops::allocate(arena(), {3, 8}, DType::I32, "i");
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ops::matmul(seq, a, i, c); }), {"i32", "f32 or f16"}));
}

TEST_F(GpuTest, MatmulRefusesReductionsAboveTheDeviceLoopLimit) {
  // llvmpipe silently stops a loop after 65535 iterations; the op must refuse instead of returning garbage.
  const auto limit = dev().profile().param("loop_limit");
  if (limit <= 0) GTEST_SKIP() << "profile '" << dev().profile().name() << "' has no loop limit";
  // Five rows: the tiled kernel (one row would take the GEMV kernel, whose lanes split the loop).
  auto a = ops::allocate(arena(), {5, limit + 8}, DType::F32, "a");
  auto c = ops::allocate(arena(), {5, 5}, DType::F32, "c");
  vk::Sequence seq(dev());
  EXPECT_THROW(ops::matmul(seq, a, a, c), DeviceLimitError);
}
#endif

}  // namespace
