// TrainControl (host/train/train_control.h): a run paused between optimizer steps checkpoints, releases its engine
// and backend, and on resume ends bit-identical to a run never paused (CPU backend); a stop ends it after a
// checkpoint without touching the process-wide Ctrl-C flag.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "common/test_data.h"
#include "host/train/train_control.h"
#include "host/train/trainer.h"
#include "host/util/stop_request.h"
#include "train/small_run.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::final_adapter;
using test::small_run;

void expect_same_adapter(const fs::path& a_dir, const fs::path& b_dir) {
  const auto a = final_adapter(a_dir), b = final_adapter(b_dir);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes());
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
  }
}

TEST(TrainControl, PausedAndResumedRunEndsBitIdenticalToAnUnpausedOne) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  std::vector<double> whole_losses, paused_losses;
  {
    Trainer t(small_run(tmp / "whole"));
    t.run([&](const StepReport& r) { whole_losses.push_back(r.loss); });
  }
  TrainOptions o = small_run(tmp / "paused");
  o.control = std::make_shared<TrainControl>();
  int pauses = 0;
  bool checkpoint_at_pause = false;
  std::thread resumer;
  struct JoinAtExit {  // a failing run must end the test, not std::terminate on a joinable thread
    std::thread& t;
    ~JoinAtExit() {
      if (t.joinable()) t.join();
    }
  } join_at_exit{resumer};
  o.control->on_pause_change = [&](bool paused) {
    if (!paused) return;
    ++pauses;
    checkpoint_at_pause = fs::exists(tmp / "paused" / "checkpoint-2");  // save_every is 3: written by the pause
    resumer = std::thread([c = o.control] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      c->resume();
    });
  };
  Trainer t(o);
  const TrainSummary s = t.run([&](const StepReport& r) {
    paused_losses.push_back(r.loss);
    if (r.step == 2) o.control->request_pause();
  });
  if (resumer.joinable()) resumer.join();
  EXPECT_EQ(pauses, 1);
  EXPECT_TRUE(checkpoint_at_pause);
  EXPECT_EQ(s.steps_done, 6);
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(paused_losses, whole_losses);
  expect_same_adapter(tmp / "whole", tmp / "paused");
}

TEST(TrainControl, StopEndsTheRunAfterACheckpointWithoutTheProcessWideFlag) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = small_run(tmp / "run");
  o.control = std::make_shared<TrainControl>();
  Trainer t(o);
  const TrainSummary s = t.run([&](const StepReport& r) {
    if (r.step == 4) o.control->request_stop();
  });
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.steps_done, 4);
  EXPECT_TRUE(fs::exists(tmp / "run" / "checkpoint-4"));
  EXPECT_FALSE(stop_requested());
}

TEST(TrainControl, StopWhilePausedEndsTheRunAtThePause) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = small_run(tmp / "run");
  o.control = std::make_shared<TrainControl>();
  // A raw pointer: the control owns this callback, so a shared_ptr here would keep both alive forever (LSan).
  o.control->on_pause_change = [c = o.control.get()](bool paused) {
    if (paused) c->request_stop();
  };
  o.control->request_pause();  // taken before the first step
  Trainer t(o);
  int steps = 0;
  const TrainSummary s = t.run([&](const StepReport&) { ++steps; });
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.steps_done, 0);
  EXPECT_EQ(steps, 0);
}

TEST(TrainControl, SleepEndsEarlyOnPauseOrStop) {
  TrainControl c;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c.request_pause();
  });
  const auto t0 = std::chrono::steady_clock::now();
  c.sleep_for(30.0);
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_TRUE(c.pause_requested());
  c.resume();
  EXPECT_FALSE(c.pause_requested());
  c.request_stop();
  EXPECT_FALSE(c.wait_while_paused());  // a stop ends any wait
}

}  // namespace
}  // namespace pocketlora
