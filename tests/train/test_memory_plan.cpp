// host/train/memory_plan.h: lifetimes -> arena offsets.
#include <gtest/gtest.h>

#include <random>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/train/memory_plan.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

std::vector<std::pair<std::int64_t, std::int64_t>> spans(const PlannedTensor& t) {
  std::vector<std::pair<std::int64_t, std::int64_t>> s{{t.first, t.last}};
  s.insert(s.end(), t.also_live.begin(), t.also_live.end());
  return s;
}

// No two tensors whose lifetimes overlap may overlap in memory, and everything
// lies inside the arena.
void expect_valid(const std::vector<PlannedTensor>& ts, const MemoryPlan& p, std::uint64_t align) {
  ASSERT_EQ(p.offsets.size(), ts.size());
  auto size = [&](std::size_t i) { return (std::max<std::uint64_t>(ts[i].bytes, 1) + align - 1) / align * align; };
  for (std::size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(p.offsets[i] % align, 0u) << ts[i].name;
    EXPECT_LE(p.offsets[i] + size(i), p.arena_bytes) << ts[i].name;
    for (std::size_t j = i + 1; j < ts.size(); ++j) {
      bool live_together = false;
      for (const auto& [fi, li] : spans(ts[i]))
        for (const auto& [fj, lj] : spans(ts[j])) live_together |= fi <= lj && fj <= li;
      const bool share_bytes = p.offsets[i] < p.offsets[j] + size(j) && p.offsets[j] < p.offsets[i] + size(i);
      EXPECT_FALSE(live_together && share_bytes) << ts[i].name << " and " << ts[j].name;
    }
  }
  EXPECT_GE(p.arena_bytes, p.live_peak_bytes);
}

TEST(MemoryPlan, ReusesBytesOfDeadTensors) {
  // A chain a -> b -> c -> d where each tensor dies after the next is made: two
  // buffers' worth suffice.
  const std::vector<PlannedTensor> ts{{"a", 1000, 0, 1}, {"b", 1000, 1, 2}, {"c", 1000, 2, 3}, {"d", 1000, 3, 4}};
  const MemoryPlan p = plan_memory(ts, 16);
  expect_valid(ts, p, 16);
  EXPECT_EQ(p.live_peak_bytes, 2 * 1008u);
  EXPECT_EQ(p.arena_bytes, 2 * 1008u);
  EXPECT_EQ(p.offsets[0], p.offsets[2]);  // c takes a's bytes
}

TEST(MemoryPlan, RandomLifetimesGiveValidPlansNearTheLowerBound) {
  std::mt19937_64 rng(5);
  double worst_ratio = 1;
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<PlannedTensor> ts;
    const int n = 5 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      const auto first = static_cast<std::int64_t>(rng() % 100);
      std::string name = "t";  // appended, not "t" + ...: GCC 12's -Wrestrict false positive
      name += std::to_string(i);
      ts.push_back({name, 1 + rng() % 100000, first, first + static_cast<std::int64_t>(rng() % 30)});
    }
    const MemoryPlan p = plan_memory(ts, 256);
    expect_valid(ts, p, 256);
    std::uint64_t sum = 0;
    for (const auto& t : ts) sum += (t.bytes + 255) / 256 * 256;
    EXPECT_LE(p.arena_bytes, sum);
    worst_ratio = std::max(worst_ratio, static_cast<double>(p.arena_bytes) / static_cast<double>(p.live_peak_bytes));
  }
  // Greedy-by-size is not optimal, but on interval lifetimes it stays close to
  // the live peak.
  EXPECT_LT(worst_ratio, 1.5);
}

// Lifetimes in two programs (the micro-batch and the evaluation both use the forward's tensors): a tensor live in
// each is dead between them, so one used only in between takes its bytes.
TEST(MemoryPlan, TensorsOfSeveralProgramsAreDeadBetweenThem) {
  const std::vector<PlannedTensor> ts{{"forward", 4096, 0, 3, {{20, 23}}}, {"update", 4096, 10, 12, {}},
                                      {"both", 4096, 2, 2, {{21, 21}}}};
  const MemoryPlan p = plan_memory(ts, 256);
  EXPECT_EQ(p.offsets[0], p.offsets[1]);  // "update" is live only between the two uses of "forward"
  EXPECT_NE(p.offsets[0], p.offsets[2]);
  EXPECT_EQ(p.arena_bytes, 2 * 4096u);
  EXPECT_EQ(p.live_peak_bytes, 2 * 4096u);
}

// Blocks: no tensor crosses a multiple of the block size (an arena allocated in blocks binds each tensor in one).
TEST(MemoryPlan, NoTensorCrossesABlock) {
  std::mt19937_64 rng(11);
  const std::uint64_t block = 64 * 1024;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<PlannedTensor> ts;
    for (int i = 0; i < 40; ++i) {
      const auto first = static_cast<std::int64_t>(rng() % 50);
      std::string name = "t";
      name += std::to_string(i);
      ts.push_back({name, 1 + rng() % block, first, first + static_cast<std::int64_t>(rng() % 20), {}});
    }
    const MemoryPlan p = plan_memory(ts, 256, block);
    expect_valid(ts, p, 256);
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const std::uint64_t end = p.offsets[i] + (ts[i].bytes + 255) / 256 * 256;
      EXPECT_EQ(p.offsets[i] / block, (end - 1) / block) << ts[i].name << " at " << p.offsets[i];
    }
  }
  // Two 40 KiB tensors live together in 64 KiB blocks: the second starts the next block.
  const MemoryPlan two = plan_memory({{"a", 40 * 1024, 0, 1, {}}, {"b", 40 * 1024, 0, 1, {}}}, 256, block);
  EXPECT_EQ(two.offsets[1], block);
  EXPECT_EQ(two.arena_bytes, block + 40 * 1024);
  EXPECT_TRUE(mentions(error_of<DeviceLimitError>([&] { plan_memory({{"huge", block + 1, 0, 0, {}}}, 256, block); }),
                       {"'huge'", std::to_string(block + 1), std::to_string(block)}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { plan_memory({}, 256, 1000); }), {"1000", "256"}));
}

TEST(MemoryPlan, RefusesBadInput) {
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { plan_memory({{"x", 4, 3, 2}}, 16); }), {"'x'", "ends"}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { plan_memory({}, 12); }), {"12", "power of two"}));
}

}  // namespace
