// parallel_chunks (host/ref/parallel.h): the persistent pool runs every chunk exactly once, rethrows on the
// caller, and stays correct when several threads call it at once or a chunk calls it again (those run on their
// caller).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "host/ref/parallel.h"

using namespace pocketlora;

namespace {

TEST(ParallelChunks, RunsEveryChunkOnce) {
  for (std::int64_t chunks : {0, 1, 2, 3, 7, 64}) {
    std::vector<std::atomic<int>> runs(static_cast<std::size_t>(chunks));
    for (int rep = 0; rep < 50; ++rep)
      ref::parallel_chunks(chunks, [&](std::int64_t c) { runs[static_cast<std::size_t>(c)].fetch_add(1); });
    for (auto& r : runs) EXPECT_EQ(r.load(), 50) << chunks;
  }
}

TEST(ParallelChunks, RethrowsAnErrorOnTheCaller) {
  for (std::int64_t bad : {0, 1, 5}) {
    EXPECT_THROW(ref::parallel_chunks(6,
                                      [&](std::int64_t c) {
                                        if (c == bad) throw std::runtime_error("chunk " + std::to_string(c));
                                      }),
                 std::runtime_error)
        << bad;
    std::atomic<int> after{0};  // the pool is usable again
    ref::parallel_chunks(3, [&](std::int64_t) { after.fetch_add(1); });
    EXPECT_EQ(after.load(), 3);
  }
}

TEST(ParallelChunks, ConcurrentAndNestedCallersAllComplete) {
  std::atomic<long> total{0};
  {
    std::vector<std::jthread> callers;
    for (int c = 0; c < 4; ++c)
      callers.emplace_back([&] {
        for (int rep = 0; rep < 200; ++rep)
          ref::parallel_chunks(3, [&](std::int64_t) {
            ref::parallel_chunks(2, [&](std::int64_t) { total.fetch_add(1); });  // nested: runs on this thread
          });
      });
  }
  EXPECT_EQ(total.load(), 4L * 200 * 3 * 2);
}

}  // namespace
