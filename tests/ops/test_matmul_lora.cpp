// matmul_lora, inference's adapted linear C = alpha * X W^T (+C0) + s * (X LA^T) LB^T, as op cases: Vulkan's
// fused few-row GEMV (shaders/nn/matmul_gemv.glsl, WITH_LORA: one dispatch for the linear and the adapter) against
// the f64 product of the same inputs; and Backend::matmul_lora on both backends (fused or the two-op fallback)
// against the same f64 yardstick.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "harness/op_case.h"
#include "host/backend/backend.h"
#include "host/ref/cpu_backend.h"
#include "host/ref/matmul.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/matmul.h"
#include "host/ops/vulkan_backend.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

struct LoraLinearInputs {
  Tensor x, w, c0, la, lb;
};

// X [M, K] and W [N, K] in [-1, 1]; the adapter's LA [r, K], LB [N, r] in [-0.25, 0.25] (a trained adapter's size).
LoraLinearInputs lora_linear_inputs(std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t r, DType w_dtype) {
  return {random_tensor({M, K}, 71, -1, 1), random_tensor({N, K}, 72, -1, 1, w_dtype), random_tensor({M, N}, 73, -1, 1),
          random_tensor({r, K}, 74, -0.25, 0.25), random_tensor({N, r}, 75, -0.25, 0.25)};
}

// The f64 yardstick: alpha * X W^T (+C0) + s * (X LA^T) LB^T.
Tensor lora_linear_f64(const LoraLinearInputs& in, float scale, const MatmulOptions& opt) {
  Tensor c = opt.accumulate ? in.c0.to(DType::F64) : Tensor::zeros(in.c0.shape(), DType::F64);
  ref::matmul(in.x.to(DType::F64), in.w.to(DType::F64), c, opt);
  Tensor t = Tensor::zeros({in.x.dim(0), in.la.dim(0)}, DType::F64);
  ref::matmul(in.x.to(DType::F64), in.la.to(DType::F64), t, {});
  ref::matmul(t, in.lb.to(DType::F64), c, MatmulOptions{static_cast<float>(scale), true});
  return c;
}

// K products for the linear plus r * K for the adapter's (smaller) terms, each side in f32.
Tolerance lora_linear_tolerance(std::int64_t K) { return dot_product_tolerance(K, 1.0, DType::F32); }

#if POCKETLORA_HAS_VULKAN
class MatmulLoraCase : public OpCase {
 public:
  // `variant`: a profile override (see OpCase::profile_override) and the name suffix that says which.
  MatmulLoraCase(std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t r, DType w_dtype, bool acc,
                 const std::string& variant = {}, const std::string& profile = {})
      : M_(M), N_(N), K_(K), r_(r), wt_(w_dtype), opt_{acc ? 0.5f : 1.0f, acc} {
    name = "matmul_lora/m" + std::to_string(M) + "_n" + std::to_string(N) + "_k" + std::to_string(K) + "_r" +
           std::to_string(r) + (w_dtype == DType::F16 ? "_w16" : "_w32") + (acc ? "_acc" : "") + variant;
    profile_override = profile;
  }
  std::vector<Tensor> inputs() const override {
    const auto in = lora_linear_inputs(M_, N_, K_, r_, wt_);
    return {in.x, in.w, in.c0, in.la, in.lb};
  }
  std::vector<std::string> output_names() const override { return {"c"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    return {lora_linear_f64({in[0], in[1], in[2], in[3], in[4]}, kScale, opt_)};
  }
  Tolerance tolerance(std::size_t) const override { return lora_linear_tolerance(K_); }
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto c = run.up(in[2]);
    // The fused path must take these shapes (M <= 4, f32 adapter): a fallback would not be this kernel's test.
    if (!ops::matmul_lora(run.seq, run.up(in[0]), run.up(in[1]), c, run.up(in[3]), run.up(in[4]), kScale, opt_))
      throw std::runtime_error(name + ": the fused GEMV declined the shapes");
    return {c};
  }
  double flops() const override { return 2.0 * static_cast<double>(M_ * (N_ + r_) * K_ + M_ * N_ * r_); }

 private:
  static constexpr float kScale = 1.75f;
  std::int64_t M_, N_, K_, r_;
  DType wt_;
  MatmulOptions opt_;
};

// Every row count the GEMV takes, K a multiple of 4 or not, N beyond one workgroup's columns, ranks 1 / 8 / 64
// (M * r up to LORA_ROWS_MAX_MR = 256, the shared T's size), f32 and f16 weights, written and accumulated; with
// the device's own layout and, by profile override, the other layouts the host can pick: one column per subgroup
// (matmul.gemv_lora_cols 0), more columns than subgroups in uneven rounds (20 over 64 / subgroup lanes) with T in
// shared memory or in registers (matmul.gemv_lora_t_lanes: ranks 20 and 32 fill 3 and 4 of a lane's T slots
// where the subgroup is 8 wide), and the one-invocation-per-column variant (no subgroups).
std::vector<OpCasePtr> matmul_lora_cases() {
  std::vector<OpCasePtr> v;
  for (std::int64_t M : {1, 2, 4})
    for (std::int64_t K : {128, 131})
      for (DType wt : {DType::F32, DType::F16})
        for (bool acc : {false, true}) v.push_back(std::make_shared<MatmulLoraCase>(M, 300, K, 8, wt, acc));
  v.push_back(std::make_shared<MatmulLoraCase>(1, 70, 64, 1, DType::F32, false));
  v.push_back(std::make_shared<MatmulLoraCase>(4, 97, 172, 64, DType::F32, true));
  const std::pair<const char*, const char*> layouts[] = {
      {"_cols0", R"("matmul.gemv_lora_cols": 0)"},
      {"_cols20_shared", R"("matmul.gemv_lora_cols": 20, "matmul.gemv_lora_t_lanes": 0)"},
      {"_cols20_lanes", R"("matmul.gemv_lora_cols": 20, "matmul.gemv_lora_t_lanes": 1)"},
      {"_nosubgroup", R"("matmul.gemv_subgroup": 0)"}};
  for (const auto& [suffix, profile] : layouts) {
    v.push_back(std::make_shared<MatmulLoraCase>(1, 300, 131, 8, DType::F32, true, suffix, profile));
    v.push_back(std::make_shared<MatmulLoraCase>(4, 97, 172, 64, DType::F16, false, suffix, profile));
    v.push_back(std::make_shared<MatmulLoraCase>(1, 300, 128, 8, DType::F32, true, suffix, profile));
    v.push_back(std::make_shared<MatmulLoraCase>(4, 97, 172, 20, DType::F16, false, suffix, profile));
    v.push_back(std::make_shared<MatmulLoraCase>(3, 70, 64, 32, DType::F32, true, suffix, profile));
  }
  return v;
}
POCKETLORA_OP_CASES(MatmulLora, matmul_lora_cases)

TEST_F(GpuTest, MatmulLoraDeclinesWhatTheGemvDoesNotTake) {
  // Five rows (the tiled kernel's), an f16 adapter, M * r beyond the shared T: nothing recorded, false returned.
  const auto in = lora_linear_inputs(5, 40, 32, 8, DType::F32);
  vk::Sequence seq(dev());
  auto c = up(in.c0);
  EXPECT_FALSE(ops::matmul_lora(seq, up(in.x), up(in.w), c, up(in.la), up(in.lb), 1.0f));
  const auto in1 = lora_linear_inputs(1, 40, 32, 8, DType::F32);
  EXPECT_FALSE(ops::matmul_lora(seq, up(in1.x), up(in1.w), up(in1.c0), up(in1.la.to(DType::F16)), up(in1.lb), 1.0f));
  const auto big = lora_linear_inputs(4, 40, 32, 65, DType::F32);
  EXPECT_FALSE(ops::matmul_lora(seq, up(big.x), up(big.w), up(big.c0), up(big.la), up(big.lb), 1.0f));
}
#endif

// Backend::matmul_lora through the op interface on each backend, fused (Vulkan, M <= 4) or matmul + lora_forward
// (the CPU backend; Vulkan at M = 5), against the f64 yardstick.
void check_backend_matmul_lora(Backend& be) {
  for (std::int64_t M : {1, 3, 5})
    for (bool acc : {false, true}) {
      const auto in = lora_linear_inputs(M, 90, 48, 8, DType::F32);
      const MatmulOptions opt{acc ? 0.5f : 1.0f, acc};
      const float scale = 2.0f;
      const BTensor x = be.upload(in.x, Lifetime::Step, "x"), w = be.upload(in.w, Lifetime::Step, "w");
      const BTensor c = be.upload(in.c0, Lifetime::Step, "c"), la = be.upload(in.la, Lifetime::Step, "la");
      const BTensor lb = be.upload(in.lb, Lifetime::Step, "lb");
      const BTensor t = be.alloc({M, 8}, DType::F32, Lifetime::Step, "t");
      be.begin();
      be.matmul_lora(x, w, la, lb, c, t, scale, opt);
      be.run(be.end());
      EXPECT_TRUE(within(be.read(c), lora_linear_f64(in, scale, opt), lora_linear_tolerance(48)))
          << "M " << M << (acc ? " accumulated" : "");
      be.free_step();
    }
}

TEST(BackendMatmulLora, CpuMatchesF64) {
  ref::CpuBackend be;
  check_backend_matmul_lora(be);
}

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, BackendMatmulLoraVulkanMatchesF64) {
  ops::VulkanBackend be(dev());
  check_backend_matmul_lora(be);
}
#endif

}  // namespace
