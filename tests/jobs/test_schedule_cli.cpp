// `pocketlora schedule` as a user runs it: add / list / cancel / run through the CLI, a bad job refused at add with
// its category, and the test: `schedule run --until-empty` SIGKILLed at seeded random moments and started
// again until the queue is empty, after which every job is done exactly once and ends with the adapter of the same
// run done uninterrupted by `pocketlora train`, bit for bit (CPU backend).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error_message.h"
#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/jobs/job_queue.h"
#include "host/util/splitmix64.h"
#include "jobs/job_fixtures.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::entries;
using test::mentions;
using test::run_cli;

// The options of one tiny job, as `train` and `schedule add` both take them.
std::string job_options(int seed, int steps, int grad_accum = 1, int seq_len = 32) {
  return "--backend cpu --model " + test::data_path("models/stories260K/stories260K.bin").string() + " --data " +
         test::data_path("datasets/tinystories_sample.txt").string() +
         " --seq-len " + std::to_string(seq_len) + " --batch 2 --lr 1e-3 --save-every 1 --eval-every 100 --grad-accum " +
         std::to_string(grad_accum) + " --steps " + std::to_string(steps) + " --seed " + std::to_string(seed);
}

std::string schedule(const fs::path& queue) { return "schedule --queue " + queue.string() + " "; }

TEST(ScheduleCli, AddListCancelRun) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const fs::path q = tmp / "queue";
  test::CliResult r = run_cli(schedule(q) + "add " + job_options(1, 2));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(mentions(r.out, {"queued job 1", (q / "runs" / "1").string()}));
  r = run_cli(schedule(q) + "add --json " + job_options(2, 2) + " --out " + (tmp / "mine").string());
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["run_dir"], (tmp / "mine").string());
  ASSERT_EQ(run_cli(schedule(q) + "add " + job_options(3, 2)).rc, 0);
  // A job the trainer would refuse is refused now, with its category, and not queued.
  r = run_cli(schedule(q) + "add " + job_options(4, 2) + " --targets q,qq");
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(mentions(r.out, {"error [invalid_input]", "qq"}));
  r = run_cli(schedule(q) + "add " + job_options(4, 2, 1, 100000));  // beyond the model's context: the data check
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(mentions(r.out, {"error [", "100000"}));

  r = run_cli(schedule(q) + "cancel 2");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(mentions(r.out, {"cancelled job 2"}));
  r = run_cli(schedule(q) + "cancel 2");
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(mentions(r.out, {"error [invalid_input]", "job 2 is already cancelled"}));

  r = run_cli(schedule(q) + "run --until-empty");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(mentions(r.out, {"job 1: running (attempt 1, from the start)", "job 1: done", "job 3: done",
                               "schedule: 2 done, 0 failed, 0 cancelled"}));
  EXPECT_EQ(r.out.find("job 2:"), std::string::npos) << r.out;

  r = run_cli(schedule(q) + "list --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["jobs"].size(), 3u);
  EXPECT_EQ(j["jobs"][0]["state"], "done");
  EXPECT_EQ(j["jobs"][1]["state"], "cancelled");
  EXPECT_EQ(j["jobs"][2]["state"], "done");
  EXPECT_EQ(j["jobs"][2]["steps_done"], 2);
  EXPECT_TRUE(j["problems"].empty());
  r = run_cli(schedule(q) + "list");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(mentions(r.out, {"ID", "STATE", "cancelled", "2/2", "tinystories_sample.txt"}));
  // A second runner on a queue that has one is refused.
  const FileLock held = JobQueue(q).lock_runner();
  r = run_cli(schedule(q) + "run --until-empty");
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(mentions(r.out, {"already being run by pid " + std::to_string(::getpid())}));
}

TEST(ScheduleCli, SigkilledRunnerLosesNoJobAndRunsNoneTwice) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const std::vector<std::string> jobs = {job_options(11, 5), job_options(12, 4, 2), job_options(13, 5)};
  // The same runs done uninterrupted by `pocketlora train`; their time sets where the kills land.
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const test::CliResult r = run_cli("train --json " + jobs[i] + " --out " + (tmp / ("direct" + std::to_string(i))).string());
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  const auto whole_us = std::max<std::int64_t>(
      1000, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());

  std::uint64_t seed = 2024;
  std::int64_t window_us = whole_us;
  for (int attempt = 0; attempt < 4; ++attempt, window_us = std::max<std::int64_t>(1000, window_us / 2)) {
    const fs::path q = tmp / ("queue" + std::to_string(attempt));
    for (const auto& j : jobs) ASSERT_EQ(run_cli(schedule(q) + "add " + j).rc, 0);
    int kills = 0;
    bool empty = false;
    for (int round = 0; round < 80 && !empty; ++round) {
      const pid_t child = test::spawn_cli(schedule(q) + "run --until-empty");
      ASSERT_GE(child, 0);
      std::this_thread::sleep_for(std::chrono::microseconds(splitmix64(seed) % static_cast<std::uint64_t>(window_us)));
      int status = 0;
      if (::waitpid(child, &status, WNOHANG) == child) {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
      } else {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        ++kills;
      }
      // Whatever the moment, every entry reads, none is lost, at most one is running and none has failed.
      const JobListing l = JobQueue(q).list();
      ASSERT_TRUE(l.problems.empty()) << l.problems[0].path << ": " << l.problems[0].message;
      ASSERT_EQ(l.jobs.size(), jobs.size());
      int running = 0, done = 0;
      for (const auto& r : l.jobs) {
        ASSERT_TRUE(r.state == JobState::Queued || r.state == JobState::Running || r.state == JobState::Done)
            << "job " << r.id << ": " << job_state_name(r.state) << " " << r.history.back().note;
        running += r.state == JobState::Running;
        done += r.state == JobState::Done;
      }
      EXPECT_LE(running, 1);
      empty = done == static_cast<int>(jobs.size());
    }
    ASSERT_TRUE(empty) << "the queue did not empty in 80 rounds";
    if (kills < 4) continue;  // the machine was faster than when timed: again, killing sooner
    for (const auto& r : JobQueue(q).list().jobs) {
      // Done exactly once, never started after it, and every start recorded.
      EXPECT_EQ(entries(r, JobState::Done), 1) << "job " << r.id;
      EXPECT_EQ(r.history.back().state, "done") << "job " << r.id;
      EXPECT_EQ(entries(r, JobState::Running), r.attempts) << "job " << r.id;
      EXPECT_EQ(r.steps_done, r.total_steps);
      test::expect_same_adapter(tmp / ("direct" + std::to_string(r.id - 1)), r.run_dir);
    }
    std::printf("[ schedule ] %d SIGKILLs over %d job starts; kill window %.0f ms\n", kills,
                [&] {
                  int n = 0;
                  for (const auto& r : JobQueue(q).list().jobs) n += static_cast<int>(r.attempts);
                  return n;
                }(),
                window_us / 1000.0);
    return;
  }
  FAIL() << "fewer than 4 SIGKILLs landed before the queue emptied, even with the window halved 3 times";
}

}  // namespace
}  // namespace pocketlora
