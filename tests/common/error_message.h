#pragma once
// Error-path assertions shared by the tests: what an expected error says, and that it names everything it should.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace pocketlora::test {

// The message of the E that f() throws; adds a test failure (and returns "") when f() throws nothing. Any other
// exception propagates and fails the test.
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

// Success when `msg` contains every needle; the failure names the missing one and prints the message.
inline ::testing::AssertionResult mentions(const std::string& msg, std::initializer_list<std::string_view> needles) {
  for (const auto n : needles)
    if (msg.find(n) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << n << "' not in: " << msg;
  return ::testing::AssertionSuccess();
}

}  // namespace pocketlora::test
