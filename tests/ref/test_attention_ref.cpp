// The attention reference (host/ref/attention.h) against hand-computed cases and its own segment mask against
// documents run one by one; runs in CPU-only builds too. The GPU kernels are compared with it, and its backward
// with finite differences, as op cases in tests/ops/test_attention.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/error_message.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/attention.h"

using namespace pocketlora;
using namespace pocketlora::test;

// Reference vs cases computed by hand, independent of the reference's code path.
TEST(AttentionReference, MatchesHandComputedCases) {
  // (1) k = 0: every visible score is 0, so out_i is the mean of the visible v rows and lse_i = log(count).
  {
    const std::int64_t T = 6, H = 4, Hkv = 2, D = 3;
    Tensor q = random_tensor({T, H, D}, 1), k = Tensor::zeros({T, Hkv, D}), v = random_tensor({T, Hkv, D}, 2);
    Tensor seg = attention_segments({2, 4});
    Tensor out = Tensor::zeros(q.shape()), lse = Tensor::zeros({T, H});
    ref::attention(q, k, v, &seg, out, lse);
    for (std::int64_t i = 0; i < T; ++i) {
      const std::int64_t first = i < 2 ? 0 : 2, count = i - first + 1;
      for (std::int64_t h = 0; h < H; ++h) {
        EXPECT_NEAR(lse.data<float>()[i * H + h], std::log(static_cast<double>(count)), 1e-6);
        for (std::int64_t d = 0; d < D; ++d) {
          double mean = 0;
          for (std::int64_t j = first; j <= i; ++j) mean += v.data<float>()[(j * Hkv + h / 2) * D + d];
          EXPECT_NEAR(out.data<float>()[(i * H + h) * D + d], mean / static_cast<double>(count), 1e-6);
        }
      }
    }
  }
  // (2) One head, head_dim 1, two tokens, scale 1: out_0 = v_0; out_1 = softmax(q1 k0, q1 k1) . (v0, v1).
  {
    Tensor q = Tensor::from_vector({0.5f, 2.0f}, {2, 1, 1}), k = Tensor::from_vector({1.0f, -1.5f}, {2, 1, 1});
    Tensor v = Tensor::from_vector({3.0f, -2.0f}, {2, 1, 1});
    Tensor out = Tensor::zeros({2, 1, 1}), lse = Tensor::zeros({2, 1});
    AttentionOptions opt;
    opt.scale = 1.0f;
    ref::attention(q, k, v, nullptr, out, lse, opt);
    const double s0 = 2.0 * 1.0, s1 = 2.0 * -1.5;
    const double p0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
    EXPECT_NEAR(out.data<float>()[0], 3.0, 1e-6);
    EXPECT_NEAR(lse.data<float>()[0], 0.5 * 1.0, 1e-6);
    EXPECT_NEAR(out.data<float>()[1], p0 * 3.0 + (1 - p0) * -2.0, 1e-6);
    EXPECT_NEAR(lse.data<float>()[1], std::log(std::exp(s0) + std::exp(s1)), 1e-6);
  }
}

// The segment mask against running the documents one at a time: a packed window of four documents (lengths 13, 1,
// 20, 6) must give, token for token, what each document gives alone (out, lse, dq, dk, dv), and must differ from
// the plain causal mask. With f64 tensors (the Eigen path, f64 inside) only the final f32 rounding differs: 1e-7;
// with f32 tensors (the training path: f32 GEMMs, whose sums run over more keys when packed, the masked ones
// adding zeros in another blocking) a few f32 ulps: 1e-6. The GPU kernels are compared with the packed reference
// in tests/ops/test_attention.cpp (attention/T40_h4_kv2_d12_docs_13_1_20_6 cases).
TEST(AttentionReference, SegmentsMatchSeparateDocuments) {
  const std::vector<std::int64_t> docs{13, 1, 20, 6};
  const std::int64_t T = 40, H = 4, Hkv = 2, D = 12;
  Tensor seg = attention_segments(docs);
  for (const DType dt : {DType::F64, DType::F32}) {
    Tensor q = random_tensor({T, H, D}, 21).to(dt), k = random_tensor({T, Hkv, D}, 22).to(dt),
           v = random_tensor({T, Hkv, D}, 23).to(dt), dout = random_tensor({T, H, D}, 24).to(dt);
    auto run = [dt](const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor* seg_, const Tensor& dout_) {
      std::vector<Tensor> r{Tensor::zeros(q_.shape(), dt), Tensor::zeros({q_.dim(0), q_.dim(1)}, dt),
                            Tensor::zeros(q_.shape(), dt), Tensor::zeros(k_.shape(), dt),
                            Tensor::zeros(v_.shape(), dt)};
      ref::attention(q_, k_, v_, seg_, r[0], r[1]);
      ref::attention_backward(q_, k_, v_, seg_, r[0], r[1], dout_, r[2], r[3], r[4]);
      for (auto& t : r) t = t.to(DType::F32);
      return r;
    };
    const auto packed = run(q, k, v, &seg, dout);
    const char* names[5] = {"out", "lse", "dq", "dk", "dv"};
    Tolerance exact;
    exact.max_abs = dt == DType::F64 ? 1e-7 : 1e-6;
    std::int64_t t0 = 0;
    for (auto n : docs) {
      auto part = [&](const Tensor& t) { return t.slice_rows(t0, t0 + n).clone(); };
      const auto alone = run(part(q), part(k), part(v), nullptr, part(dout));
      for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(within(part(packed[i]), alone[i], exact))
            << names[i] << " of the document at " << t0 << ", " << dtype_name(dt);
      t0 += n;
    }
    // The mask did something: the plain causal mask gives another out (by far more than the GPU tolerance, 2e-6).
    const auto plain = run(q, k, v, nullptr, dout);
    Tolerance gpu_out;
    gpu_out.max_abs = 2e-6;
    EXPECT_FALSE(within(packed[0], plain[0], gpu_out)) << dtype_name(dt);
  }
}

TEST(AttentionReference, RejectsBadShapes) {
  Tensor q = Tensor::zeros({4, 3, 8}), k = Tensor::zeros({4, 2, 8}), out = Tensor::zeros({4, 3, 8}),
         lse = Tensor::zeros({4, 3});
  EXPECT_TRUE(mentions(error_of<ShapeError>([&] { ref::attention(q, k, k, nullptr, out, lse); }),
                       {"ref::attention", "[4, 3, 8]", "[4, 2, 8]"}));
  // f16 is a storage dtype (widened to f64 inside); bf16 is not accepted.
  Tensor qbf = Tensor::zeros({4, 2, 8}, DType::BF16), k1 = Tensor::zeros({4, 1, 8}), o2 = Tensor::zeros({4, 2, 8}),
         l2 = Tensor::zeros({4, 2});
  EXPECT_TRUE(
      mentions(error_of<ShapeError>([&] { ref::attention(qbf, k1, k1, nullptr, o2, l2); }), {"q [4, 2, 8] is bf16"}));
}

// The f32 path (fused rows, f32 exponentials; what the CPU backend trains with) against the f64 Eigen path on the
// same values, packed documents included, within the tolerances the GPU kernels are held to against f64 (out 2e-6
// absolute, lse 1e-6 and gradients 1e-5 relative), and bit-identical from one run to the next.
TEST(AttentionReference, F32PathMatchesF64Path) {
  const std::int64_t T = 70, H = 8, Hkv = 4, D = 16;
  Tensor seg = attention_segments({30, 40});
  Tensor q = random_tensor({T, H, D}, 31), k = random_tensor({T, Hkv, D}, 32), v = random_tensor({T, Hkv, D}, 33);
  Tensor dout = random_tensor({T, H, D}, 34);
  auto run = [&](DType dt) {
    std::vector<Tensor> r{Tensor::zeros(q.shape(), dt), Tensor::zeros({T, H}, dt), Tensor::zeros(q.shape(), dt),
                          Tensor::zeros(k.shape(), dt), Tensor::zeros(v.shape(), dt)};
    const Tensor qd = q.to(dt), kd = k.to(dt), vd = v.to(dt), dod = dout.to(dt);
    ref::attention(qd, kd, vd, &seg, r[0], r[1]);
    ref::attention_backward(qd, kd, vd, &seg, r[0], r[1], dod, r[2], r[3], r[4]);
    for (auto& t : r) t = t.to(DType::F32);
    return r;
  };
  const auto f32 = run(DType::F32), f32_again = run(DType::F32), f64 = run(DType::F64);
  Tolerance out, lse, grad;
  out.max_abs = 2e-6;
  lse.max_rel = 1e-6;
  lse.rel_floor = 1.0;
  grad.max_rel = 1e-5;
  grad.rel_floor = 1.0;
  const char* names[5] = {"out", "lse", "dq", "dk", "dv"};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(within(f32[i], f64[i], i == 0 ? out : i == 1 ? lse : grad)) << names[i];
    EXPECT_EQ(std::memcmp(f32[i].raw(), f32_again[i].raw(), f32[i].nbytes()), 0) << names[i] << " not repeatable";
  }
}
