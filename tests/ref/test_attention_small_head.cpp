// The CPU backend's small-head attention kernels (host/ref/attention_small_head.h) against the f64 reference path
// of ref::attention / ref::attention_backward on the same values: every head dim with a kernel, a sequence length
// that is not a multiple of the kernels' 8 keys, grouped-query heads, with and without packed documents. Held to
// the tolerances the GPU kernels and the GEMM f32 path are held to against f64 (out 2e-6 absolute, lse 1e-6 and
// gradients 1e-5 relative); the AVX2 and baseline builds of the kernels must give the same bits.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "harness/op_harness.h"
#include "host/ref/attention.h"
#include "host/ref/attention_small_head.h"
#include "host/ref/cpu_simd.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

struct Results {
  std::vector<Tensor> t;  // out, lse, dq, dk, dv (f32)
};

Results run_kernels(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* seg, const Tensor& dout,
                    const AttentionDims& d) {
  Results r{{Tensor::zeros(q.shape()), Tensor::zeros({d.T, d.n_heads}), Tensor::zeros(q.shape()),
             Tensor::zeros(k.shape()), Tensor::zeros(v.shape())}};
  const float scale = attention_scale(d, {});
  const std::int32_t* s = seg ? seg->data<std::int32_t>() : nullptr;
  ref::attention_small_head_f32(q.data<float>(), k.data<float>(), v.data<float>(), s, r.t[0].data<float>(),
                                r.t[1].data<float>(), d, scale);
  ref::attention_small_head_backward_f32(q.data<float>(), k.data<float>(), v.data<float>(), s, r.t[0].data<float>(),
                                         r.t[1].data<float>(), dout.data<float>(), r.t[2].data<float>(),
                                         r.t[3].data<float>(), r.t[4].data<float>(), d, scale);
  return r;
}

Results run_f64(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* seg, const Tensor& dout) {
  const Tensor qd = q.to(DType::F64), kd = k.to(DType::F64), vd = v.to(DType::F64), dod = dout.to(DType::F64);
  Results r{{Tensor::zeros(q.shape(), DType::F64), Tensor::zeros({q.dim(0), q.dim(1)}, DType::F64),
             Tensor::zeros(q.shape(), DType::F64), Tensor::zeros(k.shape(), DType::F64),
             Tensor::zeros(v.shape(), DType::F64)}};
  ref::attention(qd, kd, vd, seg, r.t[0], r.t[1]);
  ref::attention_backward(qd, kd, vd, seg, r.t[0], r.t[1], dod, r.t[2], r.t[3], r.t[4]);
  for (auto& t : r.t) t = t.to(DType::F32);
  return r;
}

// Tolerance of output i (out, lse, dq, dk, dv) against the f64 path.
Tolerance tolerance_of(int i) {
  Tolerance t;
  if (i == 0) {
    t.max_abs = 2e-6;
  } else {
    t.max_rel = i == 1 ? 1e-6 : 1e-5;
    t.rel_floor = 1.0;
  }
  return t;
}

void check_case(std::int64_t T, std::int64_t D, const Tensor* seg) {
  const std::int64_t H = 4, Hkv = 2;
  ASSERT_TRUE(ref::attention_small_head_supported(D)) << D;
  const AttentionDims d{T, H, Hkv, D};
  const auto seed = static_cast<std::uint64_t>(D + T);
  const Tensor q = random_tensor({T, H, D}, 100 + seed, -2.0f, 2.0f), k = random_tensor({T, Hkv, D}, 200 + seed),
               v = random_tensor({T, Hkv, D}, 300 + seed), dout = random_tensor({T, H, D}, 400 + seed);
  const std::string label =
      "T " + std::to_string(T) + ", D " + std::to_string(D) + (seg ? ", packed documents" : ", causal");
  const Results got = run_kernels(q, k, v, seg, dout, d), want = run_f64(q, k, v, seg, dout);
  ref::set_cpu_simd_avx2(false);
  const Results baseline = run_kernels(q, k, v, seg, dout, d);
  ref::set_cpu_simd_avx2(true);
  const char* names[5] = {"out", "lse", "dq", "dk", "dv"};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(within(got.t[i], want.t[i], tolerance_of(i))) << label << ": " << names[i];
    EXPECT_EQ(std::memcmp(got.t[i].raw(), baseline.t[i].raw(), got.t[i].nbytes()), 0)
        << label << ": " << names[i] << " differs between the AVX2 and baseline builds";
  }
}

}  // namespace

// T 5: fewer keys than one vector; T 37: a partial last vector.
TEST(AttentionSmallHead, MatchesF64ReferenceAndIsTheSameWithoutSimd) {
  const Tensor seg5 = attention_segments({2, 3}), seg37 = attention_segments({13, 1, 23});
  for (const std::int64_t D : {8, 16, 32}) {
    check_case(5, D, nullptr);
    check_case(5, D, &seg5);
    check_case(37, D, nullptr);
    check_case(37, D, &seg37);
  }
}

// ref::attention takes the kernels for these head dims only; the result through it is the kernels' result.
TEST(AttentionSmallHead, RefAttentionUsesItForSupportedHeadDims) {
  EXPECT_FALSE(ref::attention_small_head_supported(12));
  EXPECT_FALSE(ref::attention_small_head_supported(64));
  const std::int64_t T = 20, H = 2, Hkv = 1, D = 8;
  const Tensor q = random_tensor({T, H, D}, 7), k = random_tensor({T, Hkv, D}, 8), v = random_tensor({T, Hkv, D}, 9);
  Tensor out = Tensor::zeros(q.shape()), lse = Tensor::zeros({T, H});
  ref::attention(q, k, v, nullptr, out, lse);
  const Results direct = run_kernels(q, k, v, nullptr, random_tensor({T, H, D}, 10), {T, H, Hkv, D});
  EXPECT_EQ(std::memcmp(out.raw(), direct.t[0].raw(), out.nbytes()), 0);
  EXPECT_EQ(std::memcmp(lse.raw(), direct.t[1].raw(), lse.nbytes()), 0);
}
