// Ops whose per-invocation loops grow with a tensor dimension, on devices that cap loop iterations (profile
// loop_limit; lavapipe's gallivm silently leaves loops after 65535 checks): each op splits the work and matches
// the reference, or refuses with DeviceLimitError. The comparisons are op cases (tests/harness/op_case.h), run
// just past lavapipe's limit on the shared device and at small sizes on a device whose profile override sets
// loop_limit 100 (so the split paths run on any device); the refusals are plain tests.
#include <cmath>
#include <limits>

#include "common/error_message.h"
#include "harness/op_case.h"
#include "host/ref/embedding.h"
#include "host/ref/rmsnorm.h"
#include "ops/cross_entropy_case.h"
#include "ops/optimizer_case.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/core/error.h"
#include "host/ops/embedding.h"
#include "host/ops/loop_limit.h"
#include "host/ops/matmul.h"
#include "host/ops/rmsnorm.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

constexpr std::int64_t kPastLavapipe = 70000;  // lavapipe's profile loop_limit is 65000
constexpr const char* kLimit100 = R"("loop_limit": 100)";

// The name prefix of a case on the shared device or on the loop_limit 100 device.
std::string prefix(bool limit100) { return limit100 ? "loop_limit100" : "loop_limit"; }

// Chunked cross-entropy (a quarter of the tokens ignored) with tolerances that grow with the counts involved.
class LoopLimitCrossEntropyCase : public CrossEntropyCase {
 public:
  LoopLimitCrossEntropyCase(bool limit100, std::int64_t T, std::int64_t V, std::int64_t chunk)
      : CrossEntropyCase(prefix(limit100) + "/cross_entropy", make_spec(T, V, chunk)) {
    if (limit100) profile_override = kLimit100;
  }
  // The kernels keep f32 running sums of positive terms (V exps per row, `valid` losses), whose rounding grows
  // with the count: up to u * count / 2 relative (u = 2^-24; 2e-3 at 70000, measured 6e-5 on lse there). A
  // dropped or repeated range would be off by a whole fraction of the sum, orders of magnitude more.
  Tolerance tolerance(std::size_t i) const override {
    const double u = std::ldexp(1.0, -24), valid = static_cast<double>(std::max<std::int64_t>(1, this->valid()));
    Tolerance t;
    if (i == 0) {  // lse = log(sum): its absolute error is the sum's relative error
      t.max_abs = 1e-6 + 0.5 * u * static_cast<double>(spec().V);
    } else if (i == 1) {  // loss sum within max(1e-5, u valid / 2) * max(1, sum)
      t.max_rel = std::max(1e-5, 0.5 * u * valid);
      t.rel_floor = 1.0;
    } else if (i == 2) {  // valid count: exact
      t.max_abs = 0;
    } else {  // (softmax - onehot) / valid: exp(logit - lse) with |lse| ~ 9 carries ~1 ulp(8) ~ 1e-6 relative
      t.max_abs = 2e-6 / valid;
    }
    return t;
  }
  bool has_gradcheck() const override { return false; }  // the gradient check is test_cross_entropy's

 private:
  static Spec make_spec(std::int64_t T, std::int64_t V, std::int64_t chunk) {
    Spec s;
    s.T = T;
    s.V = V;
    s.chunk = chunk;
    s.ignored_fraction = 0.25;
    return s;
  }
};

// Embedding backward: dtable [V, D] += scatter of dout [tokens, D] by ids, the table row-chunked into
// `chunk_bytes` bindings (0: one binding).
class EmbeddingBackwardCase : public OpCase {
 public:
  EmbeddingBackwardCase(bool limit100, std::int64_t tokens, std::int64_t V, std::int64_t D, std::uint64_t chunk_bytes)
      : tokens_(tokens), V_(V), D_(D), chunk_bytes_(chunk_bytes) {
    name = prefix(limit100) + "/embedding_backward/" + std::to_string(tokens) + "_tokens_" + std::to_string(V) + "x" +
           std::to_string(D) + (chunk_bytes ? "_chunk" + std::to_string(chunk_bytes) + "B" : "");
    if (limit100) profile_override = kLimit100;
  }
  std::vector<Tensor> inputs() const override {
    Tensor u = random_tensor({tokens_}, 3, 0, 1);
    std::vector<std::int32_t> id(static_cast<std::size_t>(tokens_));
    for (std::int64_t t = 0; t < tokens_; ++t)
      id[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(u.data<float>()[t] * static_cast<float>(V_ - 1));
    return {int_tensor(id), random_tensor({tokens_, D_}, 4), random_tensor({V_, D_}, 5)};  // ids, dout, dtable0
  }
  std::vector<std::string> output_names() const override { return {"dtable"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor dtab = in[2].clone();
    ref::embedding_backward(in[0], in[1], dtab);
    return {dtab};
  }
  // f32 sums of ~tokens / V values in [-1, 1] per entry (as test_embedding: 1e-6 per add; measured 9.5e-7 for
  // ~7 adds); a dropped or repeated token range would be off by whole values.
  Tolerance tolerance(std::size_t) const override {
    Tolerance t;
    t.max_abs = 1e-6 * static_cast<double>(tokens_ / V_ + 1);
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto dt = ops::upload_row_chunked(run.dev, run.arena, in[2], "dtable", chunk_bytes_);
    auto ids = run.up(in[0], "ids"), dout = run.up(in[1], "dout");
    ops::embedding_backward(run.seq, ids, dout, dt);
    // The row chunks back into one [V, D] tensor.
    auto whole = run.zeros({V_, D_}, DType::F32, "dtable");
    VkDeviceSize offset = 0;
    for (const auto& c : dt.chunks) {
      run.seq.copy(c.buf.sub(0, c.nbytes()), whole.buf.sub(offset, c.nbytes()));
      offset += c.nbytes();
    }
    return {whole};
  }
#endif
  double flops() const override { return static_cast<double>(tokens_ * D_); }
  double bytes() const override { return 4.0 * static_cast<double>(tokens_ * D_ + tokens_ + 2 * V_ * D_); }

 private:
  std::int64_t tokens_, V_, D_;
  std::uint64_t chunk_bytes_;
};

// RMSNorm backward over `rows` rows: dw (a sum over rows) accumulated into a non-zero start or overwritten.
class RmsnormBackwardCase : public OpCase {
 public:
  RmsnormBackwardCase(bool limit100, std::int64_t rows, std::int64_t dim, bool accumulate)
      : rows_(rows), dim_(dim), accumulate_(accumulate) {
    name = prefix(limit100) + "/rmsnorm_backward/" + std::to_string(rows) + "x" + std::to_string(dim) +
           (accumulate ? "_accumulate" : "");
    if (limit100) profile_override = kLimit100;
  }
  // x, w, dy, dw0, rstd (from the reference forward)
  std::vector<Tensor> inputs() const override {
    Tensor x = random_tensor({rows_, dim_}, 6, -2, 2), w = random_tensor({dim_}, 7, 0.5f, 1.5f);
    Tensor y = Tensor::zeros({rows_, dim_}), rstd = Tensor::zeros({rows_});
    ref::rmsnorm(x, w, y, rstd, 1e-5f);
    return {x, w, random_tensor({rows_, dim_}, 8), random_tensor({dim_}, 9), rstd};
  }
  std::vector<std::string> output_names() const override { return {"dw"}; }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor dx = Tensor::zeros({rows_, dim_}), dw = in[3].clone();
    ref::rmsnorm_backward(in[0], in[1], in[4], in[2], dx, dw, accumulate_);
    return {dw};
  }
  // As test_rmsnorm: dw is a sum of `rows` O(1) products, judged relative to sqrt(rows) (dot_product_tolerance).
  Tolerance tolerance(std::size_t) const override { return dot_product_tolerance(rows_, 1.0, DType::F32); }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto x = run.up(in[0]), w = run.up(in[1]), dy = run.up(in[2]), dw = run.up(in[3]), rstd = run.up(in[4]);
    auto dx = run.zeros({rows_, dim_}, DType::F32, "dx");
    ops::rmsnorm_backward(run.seq, x, w, rstd, dy, dx, dw, accumulate_);
    return {dw};
  }
#endif
  // Per element: dx (~6 flops: the row dot product and the update) and dw (2).
  double flops() const override { return 8.0 * static_cast<double>(rows_ * dim_); }
  double bytes() const override { return 4.0 * static_cast<double>(3 * rows_ * dim_ + rows_ + 3 * dim_); }

 private:
  std::int64_t rows_, dim_;
  bool accumulate_;
};

// Two Adafactor steps (global grad norm with clipping, then the factored update) with rms(u) checked.
OpCasePtr adafactor_case(bool limit100, std::vector<Shape> shapes) {
  OptimizerCase::Spec s;
  s.cfg.kind = OptimizerKind::Adafactor;
  s.cfg.lr = 1e-2f;
  s.cfg.eps = 1e-30f;
  s.cfg.max_grad_norm = 1.0f;
  s.shapes = std::move(shapes);
  s.steps = 2;
  s.check_rms = true;
  auto c = std::make_shared<OptimizerCase>(prefix(limit100) + "/adafactor/" + shape_str(s.shapes[0]), s);
  if (limit100) c->profile_override = kLimit100;
  return c;
}

std::vector<OpCasePtr> loop_limit_cases() {
  std::vector<OpCasePtr> v;
  // Just past lavapipe's limit on the shared device: a Llama-3-sized vocabulary chunk, more tokens / rows than
  // the limit, a rank-16 LoRA A over a 4096 hidden size (its RMS pass alone is ~65.6k loop checks).
  v.push_back(std::make_shared<LoopLimitCrossEntropyCase>(false, 2, kPastLavapipe, kPastLavapipe));
  v.push_back(std::make_shared<LoopLimitCrossEntropyCase>(false, kPastLavapipe, 3, 3));
  v.push_back(std::make_shared<EmbeddingBackwardCase>(false, kPastLavapipe, 5, 2, 0));
  v.push_back(std::make_shared<RmsnormBackwardCase>(false, kPastLavapipe, 2, true));
  v.push_back(adafactor_case(false, {{16, 4100}}));
  // loop_limit 100: every split path at small sizes. Cross-entropy stats: 2 loops of <= 49 columns per
  // dispatch; finalize: <= 99 tokens per dispatch.
  v.push_back(std::make_shared<LoopLimitCrossEntropyCase>(true, 120, 250, 250));
  v.push_back(std::make_shared<LoopLimitCrossEntropyCase>(true, 120, 250, 97));
  v.push_back(std::make_shared<EmbeddingBackwardCase>(true, 250, 7, 3, 0));
  v.push_back(std::make_shared<EmbeddingBackwardCase>(true, 250, 37, 20, 1000));  // 12-row bindings
  v.push_back(std::make_shared<RmsnormBackwardCase>(true, 250, 3, true));
  v.push_back(std::make_shared<RmsnormBackwardCase>(true, 250, 3, false));
  // Grad norm: 1356 elements in chunks of 99 (not 1024) so the reduce fits; Adafactor RMS one row per pass.
  v.push_back(adafactor_case(true, {{30, 40}, {7, 13}, {1, 65}}));
  return v;
}

POCKETLORA_OP_CASES(LoopLimit, loop_limit_cases)

#if POCKETLORA_HAS_VULKAN
template <typename F> void expect_device_limit(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected DeviceLimitError mentioning '" << needle << "'";
  } catch (const DeviceLimitError& e) {
    EXPECT_TRUE(mentions(e.what(), {needle}));
    EXPECT_EQ(e.code(), ErrorCode::DeviceLimit);
  }
}

TEST(LoopLimitSpans, CoverTheRangeInOrder) {
  using R = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  EXPECT_EQ(ops::spans(10, 4), (R{{0, 4}, {4, 8}, {8, 10}}));
  EXPECT_EQ(ops::spans(8, 4), (R{{0, 4}, {4, 8}}));
  EXPECT_EQ(ops::spans(3, std::numeric_limits<std::uint64_t>::max()), (R{{0, 3}}));
  EXPECT_EQ(ops::spans(0, 4), (R{{0, 0}}));
}

TEST_F(GpuTest, LoopLimitRefusesWhatCannotSplit) {
  if (ops::loop_limit(dev()) == 0) GTEST_SKIP() << "profile '" << dev().profile().name() << "' has no loop limit";
  const std::int64_t dim = static_cast<std::int64_t>(ops::loop_limit(dev())) / 2 + 1;  // two loops over dim
  auto x = ops::allocate(arena(), {1, dim}, DType::F32, "x"), w = ops::allocate(arena(), {dim}, DType::F32, "w");
  auto r = ops::allocate(arena(), {1}, DType::F32, "rstd");
  vk::Sequence seq(dev());
  expect_device_limit([&] { ops::rmsnorm(seq, x, w, x, r, 1e-5f); }, "ops::rmsnorm");
}

// On the loop_limit 100 device (where the cases above split), what cannot split is refused.
TEST(LoopLimitOverride, SmallLimitRefusesWhatCannotSplit) {
  POCKETLORA_REQUIRE_GPU();
  ProfileOverrideDevice d(kLimit100);
  ASSERT_EQ(ops::loop_limit(d.dev()), 100u);
  vk::Sequence seq(d.dev());
  // Five rows: the tiled kernel, one k per iteration. One row: the GEMV kernel, 4 k times the lanes (the subgroup,
  // at most 128) per iteration, so only a far longer reduction is refused.
  auto a = ops::allocate(d.arena(), {5, 150}, DType::F32, "a"), c = ops::allocate(d.arena(), {5, 5}, DType::F32, "c");
  expect_device_limit([&] { ops::matmul(seq, a, a, c); }, "K = 150");
  const std::int64_t long_k = 4 * 128 * 101;
  auto row = ops::allocate(d.arena(), {1, long_k}, DType::F32, "row");
  auto w = ops::allocate(d.arena(), {2, long_k}, DType::F32, "w");
  auto y = ops::allocate(d.arena(), {1, 2}, DType::F32, "y");
  expect_device_limit([&] { ops::matmul(seq, row, w, y); }, "GEMV: the loop over K = " + std::to_string(long_k));
  auto wide = ops::allocate(d.arena(), {3, 120}, DType::F32, "wide");  // a row-statistics loop of 121 checks
  OptimizerConfig cfg;
  cfg.kind = OptimizerKind::Adafactor;
  auto st = ops::make_optimizer_state(d.dev(), d.arena(), cfg, {3, 120}, "wide");
  auto stats = ops::make_grad_stats(d.arena());
  auto consts = ops::upload(d.dev(), d.arena(), step_constants_tensor(step_constants(cfg, cfg.lr, 1)), "consts");
  expect_device_limit([&] { ops::optimizer_step(seq, cfg, consts, wide, wide, st, stats); }, "[3, 120]");
  auto big = ops::allocate(d.arena(), {100, 100}, DType::F32, "big");  // 10^4 elements: partials of 99 are too many
  expect_device_limit([&] { ops::grad_norm(seq, d.arena(), {big}, 1.0f, stats); }, "ops::grad_norm");
}
#endif

}  // namespace
