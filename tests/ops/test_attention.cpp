#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// Causal GQA attention: both GPU variants (simple: [n_heads, T, T] scratch; lean: flash-style) against the Eigen
// reference, forward (out, lse) and backward (dq, dk, dv), and packed-document (segment id) masking against
// running the documents one by one. The reference itself is tested in tests/ref/test_attention_ref.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "common/test_data.h"
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/attention.h"
#include "host/ref/attention.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

using Variant = AttentionOptions::Variant;

const char* variant_name(Variant v) { return v == Variant::Simple ? "simple" : v == Variant::Lean ? "lean" : "auto"; }

// Tolerances (f32 GPU vs the reference computed in f64 from the same f32 inputs), inputs uniform in [-1, 1]:
// - out is a convex combination of v rows, |out| <= 1; both variants sum at most T terms in f32 and use the
//   GPU's exp (Vulkan allows 3 + 2|x| ulp): limit max_abs 2e-6 (seen on lavapipe: 1.5e-7).
// - lse = max + log(sum) is O(1) to O(log T), i.e. a few f32 ulps of a number up to ~6: limit relative
//   error 1e-6 against max(|want|, 1) (seen: 9.5e-7 absolute, 1.6e-7 relative).
// - dq, dk, dv are sums of up to T (x group heads) O(1) products; dv of early keys grows to ~T/4 in magnitude,
//   so the error is relative: limit 1e-5 against max(|want|, 1) (seen: 1.6e-6).
Tolerance out_tol() {
  Tolerance t;
  t.max_abs = 2e-6;
  return t;
}
Tolerance lse_tol() {
  Tolerance t;
  t.max_rel = 1e-6;
  t.rel_floor = 1.0;
  return t;
}
Tolerance grad_tol() {
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = 1.0;
  return t;
}

LegacyOpCase make_case(std::int64_t T, std::int64_t H, std::int64_t Hkv, std::int64_t D) {
  LegacyOpCase c;
  c.name = "attention/T" + std::to_string(T) + "_h" + std::to_string(H) + "_kv" + std::to_string(Hkv) + "_d" +
           std::to_string(D);
  c.dims = {T, H, Hkv, D};
  // Causal: about half of the T*T score pairs, each 2*D flops for q.k and 2*D for p.v.
  c.flops = 4.0 * static_cast<double>(H * D) * static_cast<double>(T * (T + 1) / 2);
  return c;
}

std::vector<LegacyOpCase> attention_cases() {
  // Bench mode adds a TinyLlama-sized case (32 q / 4 kv heads, head_dim 64, T 512) to time the kernels one by one.
  if (bench_mode())
    return {make_case(130, 8, 4, 8), make_case(512, 8, 4, 8), make_case(130, 32, 4, 64), make_case(512, 32, 4, 64)};
  return {make_case(1, 8, 4, 8),   make_case(7, 8, 4, 8),   make_case(33, 4, 1, 12), make_case(130, 8, 4, 8),
          make_case(130, 2, 2, 64), make_case(33, 8, 4, 64), make_case(7, 2, 2, 12),  make_case(130, 4, 1, 12),
          make_case(1, 4, 1, 64),  make_case(33, 2, 2, 8), make_case(40, 32, 4, 64)};
}

struct Grads {
  Tensor out, lse, dq, dk, dv;
};

Grads run_ref(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* seg, const Tensor& dout) {
  Grads r{Tensor::zeros(q.shape()), Tensor::zeros({q.dim(0), q.dim(1)}), Tensor::zeros(q.shape()),
          Tensor::zeros(k.shape()), Tensor::zeros(v.shape())};
  ref::attention(q, k, v, seg, r.out, r.lse);
  ref::attention_backward(q, k, v, seg, r.out, r.lse, dout, r.dq, r.dk, r.dv);
  return r;
}

class AttentionGpu : public GpuTest {
 protected:
  // Forward then backward (dout given) on the GPU in one recorded sequence.
  Grads run_gpu(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* seg, const Tensor& dout,
                Variant variant, double* fwd_ms = nullptr, double* bwd_ms = nullptr, std::uint32_t lean_rows = 0) {
    AttentionOptions opt;
    opt.variant = variant;
    opt.lean_rows = lean_rows;
    auto dq_ = up(q), dk_ = up(k), dv_ = up(v), ddo = up(dout);
    ops::DeviceTensor dseg;
    if (seg) dseg = up(*seg);
    auto out = ops::allocate(arena(), q.shape(), DType::F32, "out");
    auto lse = ops::allocate(arena(), {q.dim(0), q.dim(1)}, DType::F32, "lse");
    auto gq = ops::allocate(arena(), q.shape(), DType::F32, "dq");
    auto gk = ops::allocate(arena(), k.shape(), DType::F32, "dk");
    auto gv = ops::allocate(arena(), v.shape(), DType::F32, "dv");
    vk::Sequence seq(dev(), bench_mode());
    ops::attention(seq, arena(), dq_, dk_, dv_, seg ? &dseg : nullptr, out, lse, opt);
    const std::uint32_t fwd_dispatches = seq.dispatch_count();
    ops::attention_backward(seq, arena(), dq_, dk_, dv_, seg ? &dseg : nullptr, out, lse, ddo, gq, gk, gv, opt);
    seq.submit();
    if (bench_mode() && fwd_ms && bwd_ms) {
      seq.submit();  // second run: pipelines and caches warm
      *fwd_ms = *bwd_ms = 0;
      const auto t = seq.timings();
      for (std::size_t i = 0; i < t.size(); ++i) {
        (i < fwd_dispatches ? *fwd_ms : *bwd_ms) += t[i].ms;
        std::printf("[bench]   %-24s %9.3f ms\n", t[i].label.c_str(), t[i].ms);
      }
    }
    return {down(out), down(lse), down(gq), down(gk), down(gv)};
  }
};

class Attention : public AttentionGpu, public ::testing::WithParamInterface<LegacyOpCase> {};

TEST_P(Attention, GpuMatchesReference) {
  const LegacyOpCase& c = GetParam();
  const auto T = c.dims[0], H = c.dims[1], Hkv = c.dims[2], D = c.dims[3];
  Tensor q = random_tensor({T, H, D}, 11), k = random_tensor({T, Hkv, D}, 12), v = random_tensor({T, Hkv, D}, 13);
  Tensor dout = random_tensor({T, H, D}, 14);
  const Grads want = run_ref(q, k, v, nullptr, dout);
  for (Variant variant : {Variant::Simple, Variant::Lean}) {
    if (bench_mode()) {  // the large bench-only cases may exceed a variant's limits on this device
      AttentionOptions o;
      o.variant = variant;
      try {
        ops::attention_variant(dev(), {T, H, Hkv, D}, o);
      } catch (const Error& e) {  // head_dim (ShapeError) or a device limit (DeviceLimitError)
        std::printf("[bench] %s %s: skipped: %s\n", c.name.c_str(), variant_name(variant), e.what());
        continue;
      }
    }
    double fms = 0, bms = 0;
    const Grads got = run_gpu(q, k, v, nullptr, dout, variant, &fms, &bms);
    const std::string what = c.name + " " + variant_name(variant);
    EXPECT_TRUE(within(got.out, want.out, out_tol())) << what << " out";
    EXPECT_TRUE(within(got.lse, want.lse, lse_tol())) << what << " lse";
    EXPECT_TRUE(within(got.dq, want.dq, grad_tol())) << what << " dq";
    EXPECT_TRUE(within(got.dk, want.dk, grad_tol())) << what << " dk";
    EXPECT_TRUE(within(got.dv, want.dv, grad_tol())) << what << " dv";
    if (bench_mode())
      std::printf("[bench] %s %s: fwd %.3f ms (%.2f GFLOPS), bwd %.3f ms\n", c.name.c_str(), variant_name(variant),
                  fms, fms > 0 ? c.flops / fms * 1e-6 : 0.0, bms);
  }
}

// The lean kernels with other query/key block sizes than the profile's (1: no blocking; 3: odd, so T = 7, 33
// and 130 end in partial blocks). Small head_dim only: each (head_dim, rows) pair is a pipeline to compile.
TEST_P(Attention, LeanBlockSizesMatchReference) {
  const LegacyOpCase& c = GetParam();
  const auto T = c.dims[0], H = c.dims[1], Hkv = c.dims[2], D = c.dims[3];
  if (D > 12) GTEST_SKIP() << "head_dim 64 runs the profile's block size in GpuMatchesReference";
  Tensor q = random_tensor({T, H, D}, 41), k = random_tensor({T, Hkv, D}, 42), v = random_tensor({T, Hkv, D}, 43);
  Tensor dout = random_tensor({T, H, D}, 44);
  const Grads want = run_ref(q, k, v, nullptr, dout);
  for (std::uint32_t rows : {1u, 3u}) {
    const Grads got = run_gpu(q, k, v, nullptr, dout, Variant::Lean, nullptr, nullptr, rows);
    const std::string what = c.name + " lean_rows " + std::to_string(rows);
    EXPECT_TRUE(within(got.out, want.out, out_tol())) << what << " out";
    EXPECT_TRUE(within(got.lse, want.lse, lse_tol())) << what << " lse";
    EXPECT_TRUE(within(got.dq, want.dq, grad_tol())) << what << " dq";
    EXPECT_TRUE(within(got.dk, want.dk, grad_tol())) << what << " dk";
    EXPECT_TRUE(within(got.dv, want.dv, grad_tol())) << what << " dv";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Attention, ::testing::ValuesIn(attention_cases()),
                         [](const ::testing::TestParamInfo<LegacyOpCase>& p) { return p.param.name.substr(10); });

// Packed window of four documents (lengths 13, 1, 20, 6): every variant must give, token for token, what the
// documents give when run one at a time (out, lse, dq, dk, dv), and so must the reference.
TEST_F(AttentionGpu, SegmentsMatchSeparateDocuments) {
  const std::vector<std::int64_t> docs{13, 1, 20, 6};
  const std::int64_t T = 40, H = 4, Hkv = 2, D = 12;
  Tensor seg = attention_segments(docs);
  Tensor q = random_tensor({T, H, D}, 21), k = random_tensor({T, Hkv, D}, 22), v = random_tensor({T, Hkv, D}, 23);
  Tensor dout = random_tensor({T, H, D}, 24);
  const Grads ref_packed = run_ref(q, k, v, &seg, dout);
  for (Variant variant : {Variant::Simple, Variant::Lean}) {
    const Grads packed = run_gpu(q, k, v, &seg, dout, variant);
    std::int64_t t0 = 0;
    for (auto n : docs) {
      auto part = [&](const Tensor& t) { return t.slice_rows(t0, t0 + n).clone(); };
      const Grads alone = run_gpu(part(q), part(k), part(v), nullptr, part(dout), variant);
      const Grads ref_alone = run_ref(part(q), part(k), part(v), nullptr, part(dout));
      const std::string what = std::string(variant_name(variant)) + " document at " + std::to_string(t0);
      EXPECT_TRUE(within(part(packed.out), alone.out, out_tol())) << what;
      EXPECT_TRUE(within(part(packed.lse), alone.lse, lse_tol())) << what;
      EXPECT_TRUE(within(part(packed.dq), alone.dq, grad_tol())) << what;
      EXPECT_TRUE(within(part(packed.dk), alone.dk, grad_tol())) << what;
      EXPECT_TRUE(within(part(packed.dv), alone.dv, grad_tol())) << what;
      // The reference's mask, checked the same way (f64 inside: only the final f32 rounding differs).
      Tolerance exact;
      exact.max_abs = 1e-7;
      EXPECT_TRUE(within(part(ref_packed.out), ref_alone.out, exact)) << what;
      EXPECT_TRUE(within(part(ref_packed.dk), ref_alone.dk, exact)) << what;
      t0 += n;
    }
    // And the packed result is not what the plain causal mask gives (the mask did something).
    const Grads plain = run_gpu(q, k, v, nullptr, dout, variant);
    EXPECT_FALSE(within(packed.out, plain.out, out_tol())) << variant_name(variant);
  }
}

// Auto must pick the simple kernels up to the profile threshold and the lean ones beyond it. A device with a
// profile override fixes the thresholds (T 64, head_dim 32) and lifts the loop cap, so every expected variant is
// a literal (the capped path is LeanRespectsDeviceLoopLimit's).
TEST(AttentionVariant, AutoFollowsProfileThreshold) {
  POCKETLORA_REQUIRE_GPU();
  TempDir tmp;
  {
    std::ofstream(tmp / "p.json") << R"({"params": {"attention.simple_max_t": 64, "attention.simple_min_head_dim": 32,
                                                    "attention.loop_limit": 0}})";
  }
  vk::DeviceOptions o;
  o.profile_override = tmp / "p.json";
  OwnDevice own(o);
  const vk::Device& dev = own.dev();
  AttentionOptions lean;
  lean.variant = Variant::Lean;
  EXPECT_EQ(ops::attention_variant(dev, {64, 2, 1, 32}, {}), Variant::Simple);  // at both thresholds
  EXPECT_EQ(ops::attention_variant(dev, {65, 2, 1, 32}, {}), Variant::Lean);    // T above
  EXPECT_EQ(ops::attention_variant(dev, {64, 2, 1, 31}, {}), Variant::Lean);    // head_dim below
  EXPECT_EQ(ops::attention_variant(dev, {8, 2, 1, 8}, {}), Variant::Lean);
  // Beyond the lean kernels' head_dim limit (256) the simple variant is taken whenever its scratch fits.
  EXPECT_EQ(ops::attention_variant(dev, {65, 1, 1, 300}, {}), Variant::Simple);
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {8, 2, 1, 8}, lean, false), 0u);
  // Simple backward: two [n_heads, T, T] f32 buffers = 2 * 2 * 64 * 64 * 4 = 65536 bytes.
  EXPECT_EQ(ops::attention_scratch_bytes(dev, {64, 2, 1, 32}, {}, true), 65536u);
}

// Drivers that cap loop iterations per invocation (profile attention.loop_limit, lavapipe) must not run the lean
// kernels past the cap: Auto falls back to the simple variant, a forced Lean is refused. The largest lean case
// within the cap is run and checked (a wrong iteration estimate would show up here as partial sums).
TEST_F(AttentionGpu, LeanRespectsDeviceLoopLimit) {
  const auto limit = dev().profile().param("attention.loop_limit");
  if (limit <= 0) GTEST_SKIP() << "no loop limit on this device";
  AttentionOptions lean;
  lean.variant = Variant::Lean;
  // 4 query heads on one kv head: the dK/dV pass, ~T * 4 * 2 * (head_dim + 1) loop checks per invocation,
  // reaches the cap at T ~ 60.
  const std::int64_t H = 4, Hkv = 1, D = 64;
  std::int64_t T_ok = 8;
  while (true) {
    try {
      ops::attention_scratch_bytes(dev(), {T_ok + 1, H, Hkv, D}, lean, true);
    } catch (const DeviceLimitError&) {
      break;
    }
    T_ok += 1;
    ASSERT_LT(T_ok, 100000) << "no limit reached";
  }
  const AttentionDims over{T_ok + 1, H, Hkv, D};
  EXPECT_EQ(ops::attention_variant(dev(), over, {}), Variant::Simple);
  try {
    ops::attention_variant(dev(), over, lean);
    ADD_FAILURE() << "expected DeviceLimitError";
  } catch (const DeviceLimitError& e) {
    EXPECT_NE(std::string(e.what()).find("attention.loop_limit"), std::string::npos) << e.what();
  }
  Tensor q = random_tensor({T_ok, H, D}, 51), k = random_tensor({T_ok, Hkv, D}, 52), v = random_tensor({T_ok, Hkv, D}, 53);
  Tensor dout = random_tensor({T_ok, H, D}, 54);
  const Grads want = run_ref(q, k, v, nullptr, dout);
  const Grads got = run_gpu(q, k, v, nullptr, dout, Variant::Lean);
  const std::string what = "lean at T = " + std::to_string(T_ok);
  EXPECT_TRUE(within(got.out, want.out, out_tol())) << what;
  EXPECT_TRUE(within(got.dq, want.dq, grad_tol())) << what;
  EXPECT_TRUE(within(got.dk, want.dk, grad_tol())) << what;
  EXPECT_TRUE(within(got.dv, want.dv, grad_tol())) << what;
}

TEST_F(AttentionGpu, RejectsBadShapesNamingOpAndShapes) {
  auto make = [&](Shape s, DType dt = DType::F32) { return ops::allocate(arena(), std::move(s), dt, "t"); };
  vk::Sequence seq(dev());
  auto expect_shape_error = [&](const ops::DeviceTensor& q, const ops::DeviceTensor& k, const ops::DeviceTensor& out,
                                const ops::DeviceTensor& lse, const std::vector<std::string>& needles,
                                const ops::DeviceTensor* seg = nullptr, AttentionOptions opt = {}) {
    try {
      ops::attention(seq, arena(), q, k, k, seg, out, lse, opt);
      ADD_FAILURE() << "expected ShapeError";
    } catch (const ShapeError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("ops::attention"), std::string::npos) << msg;
      for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    }
  };
  // n_heads 3 not divisible by n_kv_heads 2.
  expect_shape_error(make({4, 3, 8}), make({4, 2, 8}), make({4, 3, 8}), make({4, 3}), {"[4, 3, 8]", "[4, 2, 8]", "multiple"});
  // head_dim mismatch.
  expect_shape_error(make({4, 2, 8}), make({4, 1, 6}), make({4, 2, 8}), make({4, 2}), {"[4, 2, 8]", "[4, 1, 6]", "head_dim"});
  // Rank 2 q.
  expect_shape_error(make({4, 16}), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}), {"[4, 16]", "3-D"});
  // T mismatch between q and k.
  expect_shape_error(make({4, 2, 8}), make({5, 1, 8}), make({4, 2, 8}), make({4, 2}), {"[5, 1, 8]"});
  // lse shape, segment shape and dtypes.
  expect_shape_error(make({4, 2, 8}), make({4, 1, 8}), make({4, 2, 8}), make({2, 4}), {"lse [2, 4]"});
  auto seg_bad = make({5}, DType::I32);
  expect_shape_error(make({4, 2, 8}), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}), {"segments [5]"}, &seg_bad);
  auto seg_f32 = make({4});
  expect_shape_error(make({4, 2, 8}), make({4, 1, 8}), make({4, 2, 8}), make({4, 2}), {"segments [4] f32"}, &seg_f32);
  expect_shape_error(make({4, 2, 8}, DType::F16), make({4, 1, 8}, DType::F16), make({4, 2, 8}), make({4, 2}),
                     {"q [4, 2, 8] f16"});
  // The lean kernels hold head_dim in registers: at most 256.
  AttentionOptions lean;
  lean.variant = Variant::Lean;
  expect_shape_error(make({2, 1, 257}), make({2, 1, 257}), make({2, 1, 257}), make({2, 1}), {"head_dim 257"}, nullptr,
                     lean);
  // Backward: gradient shapes.
  auto q = make({4, 2, 8}), k = make({4, 1, 8}), out = make({4, 2, 8}), lse = make({4, 2});
  try {
    ops::attention_backward(seq, arena(), q, k, k, nullptr, out, lse, out, out, out, k);
    ADD_FAILURE() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("ops::attention_backward"), std::string::npos) << e.what();
  }
  EXPECT_EQ(seq.dispatch_count(), 0u);
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
