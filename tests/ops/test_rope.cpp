#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// RoPE on the GPU vs the reference, both layouts and inverse (reference checks: tests/ref/test_rope_ref.cpp).
#include <cmath>

#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/rope.h"
#include "host/ref/rope.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

class Rope : public GpuTest, public ::testing::WithParamInterface<std::array<std::int64_t, 3>> {};

TEST_P(Rope, GpuMatchesReferenceBothLayoutsAndInverse) {
  const auto [T, H, D] = GetParam();
  std::vector<std::int32_t> p(static_cast<std::size_t>(T));
  for (std::int64_t i = 0; i < T; ++i) p[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7) % (T + 3));
  Tensor pos = int_tensor(p);
  Tensor table = rope_table(T + 3, rope_inv_freq(D, 500000.0, Llama3RopeScaling{}));
  auto gpos = up(pos), gtab = up(table);
  for (auto layout : {RopeLayout::Interleaved, RopeLayout::RotateHalf})
    for (bool inverse : {false, true}) {
      Tensor x = random_tensor({T, H, D}, 3);
      Tensor want = x.clone();
      ref::rope(want, pos, table, layout, inverse);
      auto gx = up(x);
      vk::Sequence seq(dev());
      ops::rope(seq, gx, gpos, gtab, layout, inverse);
      seq.submit();
      // Same f32 factors on both sides; the GPU rounds each product-sum in f32: |error| <= ~2 ulp of |x| <= 1.
      Tolerance t;
      t.max_abs = 5e-7;
      EXPECT_TRUE(within(down(gx), want, t)) << "layout " << static_cast<int>(layout) << " inverse " << inverse;
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Rope,
                         ::testing::Values(std::array<std::int64_t, 3>{1, 1, 2}, std::array<std::int64_t, 3>{7, 8, 8},
                                           std::array<std::int64_t, 3>{33, 3, 64},
                                           std::array<std::int64_t, 3>{5, 4, 12}));

TEST_F(GpuTest, RopeRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 2, 7}, DType::F32, "x");
  auto pos = ops::allocate(arena(), {4}, DType::I32, "pos");
  auto tab = ops::allocate(arena(), {8, 3, 2}, DType::F32, "tab");
  vk::Sequence seq(dev());
  EXPECT_THROW(ops::rope(seq, x, pos, tab, RopeLayout::RotateHalf), ShapeError);
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
