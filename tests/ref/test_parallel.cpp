// run_on_threads (host/ref/parallel.h): the persistent pool runs every index exactly once, rethrows on the caller,
// and stays correct when several threads call it at once or a job calls it again (those run on their caller).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "host/ref/parallel.h"

using namespace pocketlora;

namespace {

TEST(RunOnThreads, RunsEveryIndexOnceWithTheThreadCount) {
  for (int threads : {1, 2, 3, 7}) {
    std::vector<std::atomic<int>> runs(static_cast<std::size_t>(threads));
    for (int rep = 0; rep < 50; ++rep)
      ref::run_on_threads(threads, [&](int t, int n) {
        EXPECT_EQ(n, threads);
        runs[static_cast<std::size_t>(t)].fetch_add(1);
      });
    for (auto& r : runs) EXPECT_EQ(r.load(), 50) << threads;
  }
}

TEST(RunOnThreads, RethrowsTheFirstErrorOnTheCaller) {
  for (int bad : {0, 1, 2}) {
    EXPECT_THROW(ref::run_on_threads(3,
                                     [&](int t, int) {
                                       if (t == bad) throw std::runtime_error("index " + std::to_string(t));
                                     }),
                 std::runtime_error)
        << bad;
    std::atomic<int> after{0};  // the pool is usable again
    ref::run_on_threads(3, [&](int, int) { after.fetch_add(1); });
    EXPECT_EQ(after.load(), 3);
  }
}

TEST(RunOnThreads, ConcurrentAndNestedCallersAllComplete) {
  std::atomic<long> total{0};
  {
    std::vector<std::jthread> callers;
    for (int c = 0; c < 4; ++c)
      callers.emplace_back([&] {
        for (int rep = 0; rep < 200; ++rep)
          ref::run_on_threads(2, [&](int, int) {
            ref::run_on_threads(2, [&](int, int) { total.fetch_add(1); });  // nested: runs on this thread
          });
      });
  }
  EXPECT_EQ(total.load(), 4L * 200 * 2 * 2);
}

}  // namespace
