// host/util/stop_request.h: the first SIGINT becomes a flag; the second is the
// default action again.
#include <gtest/gtest.h>

#include <csignal>

#include "host/util/stop_request.h"

using namespace pocketlora;

namespace {

TEST(StopRequest, FirstSignalSetsTheFlagAndRestoresTheDefault) {
  clear_stop_request();
  {
    StopRequestScope scope;
    EXPECT_FALSE(stop_requested());
    std::raise(SIGINT);  // handled: the process lives on
    EXPECT_TRUE(stop_requested());
    // The handler put SIG_DFL back for the next one.
    const auto h = std::signal(SIGINT, SIG_IGN);
    EXPECT_EQ(h, SIG_DFL);
  }
  clear_stop_request();
  EXPECT_FALSE(stop_requested());
  request_stop();
  EXPECT_TRUE(stop_requested());
  clear_stop_request();
  std::signal(SIGINT, SIG_DFL);
}

}  // namespace
