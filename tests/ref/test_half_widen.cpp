// ref::widen_half (the f16 head's panel widening: a table lookup split on the pool) against half_to_float on every
// one of the 65536 f16 bit patterns, in one call large enough to be split:
// zeros, subnormals, normals, infinities and NaNs of both signs, bit for bit.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "host/core/half.h"
#include "host/ref/half_widen.h"

using namespace pocketlora;

TEST(HalfWiden, EveryBitPatternMatchesHalfToFloat) {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  std::vector<float> got(all.size());
  ref::widen_half(all.data(), got.data(), static_cast<std::int64_t>(all.size()));
  int mismatches = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::uint32_t want = std::bit_cast<std::uint32_t>(half_to_float(all[i]));
    const std::uint32_t have = std::bit_cast<std::uint32_t>(got[i]);
    if (want != have && ++mismatches <= 5)
      ADD_FAILURE() << "f16 0x" << std::hex << i << ": got 0x" << have << ", half_to_float 0x" << want;
  }
  EXPECT_EQ(mismatches, 0);
}
