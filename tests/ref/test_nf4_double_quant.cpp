// NF4 double quantization (second level on the absmax array, host/core/nf4_quantize.h) against values worked out
// by hand; runs in CPU-only builds too. The map itself is checked in tests/ref/test_nf4_quantize.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "host/core/nf4_quantize.h"

using namespace pocketlora;

namespace {

TEST(Nf4DoubleQuantRef, HandComputedOffsetNestedScalesAndCodes) {
  // 258 absmax values: nested block 0 = 256 values alternating 1, 5; nested block 1 = (2, 4). By hand:
  // offset = mean = 3 (exact), nested scales = max |a - 3| = 2 and 1; every value then normalises to -1 or +1:
  // +1 is the map's last entry (code 255, exactly 1.0), -1 is below the map's smallest entry (code 0).
  std::vector<float> absmax;
  for (int i = 0; i < 256; ++i) absmax.push_back(i % 2 == 0 ? 1.0f : 5.0f);
  absmax.push_back(2.0f);
  absmax.push_back(4.0f);
  const Nf4DoubleQuant dq = double_quantize_absmax(absmax);
  EXPECT_EQ(dq.offset, 3.0f);
  ASSERT_EQ(dq.nested_absmax.size(), 2u);
  EXPECT_EQ(dq.nested_absmax[0], 2.0f);
  EXPECT_EQ(dq.nested_absmax[1], 1.0f);
  ASSERT_EQ(dq.absmax_q.size(), 258u);
  for (std::size_t i = 0; i < 258; ++i) EXPECT_EQ(dq.absmax_q[i], absmax[i] > 3.0f ? 255 : 0) << "absmax " << i;
  // Decoding: code 255 gives 1.0 * scale + 3 exactly (5 in block 0, 4 in block 1).
  const std::vector<float> back = dequantize_absmax(dq, absmax.size());
  EXPECT_EQ(back[1], 5.0f);
  EXPECT_EQ(back[257], 4.0f);
}

}  // namespace
