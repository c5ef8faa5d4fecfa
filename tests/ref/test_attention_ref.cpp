// The attention reference (host/ref/attention.h) against hand-computed cases and central finite differences in
// fp64; runs in CPU-only builds too. The GPU kernels are compared with it in tests/ops/test_attention.cpp.
#include <gtest/gtest.h>

#include <cmath>

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

// L = sum(W .* attention(q, k, v)); analytic gradients from ref::attention_backward (dout = W, with the out/lse the
// forward saved) vs central differences in fp64, h = 1e-6 (truncation ~h^2, rounding ~1e-16/h): |error| < 1e-7.
// GQA (4 query heads on 2 kv heads), with and without a packed-document mask.
TEST(AttentionReference, BackwardMatchesFiniteDifferences) {
  const std::int64_t T = 6, H = 4, Hkv = 2, D = 3;
  Tensor w = random_tensor({T, H, D}, 31).to(DType::F64);
  Tensor seg = attention_segments({4, 2});
  for (const Tensor* s : std::vector<const Tensor*>{nullptr, &seg}) {
    auto loss = [&](const std::vector<Tensor>& in) {
      Tensor out = Tensor::zeros({T, H, D}, DType::F64), lse = Tensor::zeros({T, H}, DType::F64);
      ref::attention(in[0], in[1], in[2], s, out, lse);
      double sum = 0;
      for (std::int64_t i = 0; i < out.numel(); ++i) sum += out.data<double>()[i] * w.data<double>()[i];
      return sum;
    };
    auto analytic = [&](const std::vector<Tensor>& in) {
      Tensor out = Tensor::zeros({T, H, D}, DType::F64), lse = Tensor::zeros({T, H}, DType::F64);
      ref::attention(in[0], in[1], in[2], s, out, lse);
      std::vector<Tensor> g{Tensor::zeros(in[0].shape(), DType::F64), Tensor::zeros(in[1].shape(), DType::F64),
                            Tensor::zeros(in[2].shape(), DType::F64)};
      ref::attention_backward(in[0], in[1], in[2], s, out, lse, w, g[0], g[1], g[2]);
      return g;
    };
    auto r = gradcheck(loss, analytic, {random_tensor({T, H, D}, 32, -2, 2), random_tensor({T, Hkv, D}, 33, -2, 2),
                                        random_tensor({T, Hkv, D}, 34)});
    EXPECT_LT(r.max_abs, 1e-7) << (s ? "segments: " : "causal: ") << r.worst;
  }
}

TEST(AttentionReference, RejectsBadShapes) {
  Tensor q = Tensor::zeros({4, 3, 8}), k = Tensor::zeros({4, 2, 8}), out = Tensor::zeros({4, 3, 8}),
         lse = Tensor::zeros({4, 3});
  try {
    ref::attention(q, k, k, nullptr, out, lse);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ref::attention"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 3, 8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 2, 8]"), std::string::npos) << msg;
  }
  Tensor q16 = Tensor::zeros({4, 2, 8}, DType::F16), k1 = Tensor::zeros({4, 1, 8}), o2 = Tensor::zeros({4, 2, 8}),
         l2 = Tensor::zeros({4, 2});
  EXPECT_THROW(ref::attention(q16, k1, k1, nullptr, o2, l2), ShapeError);
}
