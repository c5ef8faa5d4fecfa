// python_float_repr against what CPython's repr(float) prints (expected strings copied from a Python session).
#include <gtest/gtest.h>

#include <bit>
#include <limits>

#include "host/core/error.h"
#include "host/util/python_float_repr.h"

using namespace pocketlora;

namespace {

TEST(PythonFloatRepr, MatchesCPythonRepr) {
  const std::pair<double, const char*> cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1.0, "1.0"},
      {0.1, "0.1"},
      {123.456, "123.456"},
      {0.0001, "0.0001"},           // decimal exponent -4: still positional
      {1e-05, "1e-05"},             // -5: scientific, two-digit exponent
      {1.5e-05, "1.5e-05"},
      {-2.5e-07, "-2.5e-07"},
      {1e15, "1000000000000000.0"},  // 15: positional
      {1e16, "1e+16"},               // 16: scientific
      {1.2345e-100, "1.2345e-100"},
      {5e-324, "5e-324"},
      {static_cast<double>(0.1f), "0.10000000149011612"},  // a float32 value as Python sees it (.item())
      {static_cast<double>(std::bit_cast<float>(0x3D400A92u)), "0.04688508063554764"},
  };
  for (const auto& [v, want] : cases) EXPECT_EQ(python_float_repr(v), want) << want;
  EXPECT_THROW(python_float_repr(std::numeric_limits<double>::quiet_NaN()), InvalidArgument);
  EXPECT_THROW(python_float_repr(std::numeric_limits<double>::infinity()), InvalidArgument);
}

}  // namespace
