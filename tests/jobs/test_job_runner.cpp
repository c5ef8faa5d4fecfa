// The job runner (host/jobs/job_runner.h) in-process on the CPU backend: jobs run oldest first and end with the
// adapter of the same run done directly; a job that fails at run time is marked failed with its error and the
// loop goes on; a cancel from another queue handle stops a running job at the step boundary, checkpointed; a stop
// from another thread requeues the job and the next run resumes it exactly; a stop made before run() starts (or
// racing its start on another thread) ends that run without training, once; a job whose runner died after its
// final checkpoint ends with its adapter; the device policy holds jobs until it allows them.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/jobs/job_runner.h"
#include "host/policy/scripted_timeline.h"
#include "host/util/stop_request.h"
#include "jobs/job_fixtures.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::entries;
using test::expect_same_adapter;
using test::mentions;
using test::tiny_job;

// The run a job stands for, done directly by the trainer.
fs::path direct_run(const TrainOptions& job, const fs::path& out) {
  TrainOptions o = job;
  o.out = out;
  Trainer(o).run();
  return out;
}

// Waits (bounded) until the trainer's stop flag is up: the runner raises it from its watcher thread.
void wait_for_stop_request() {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!stop_requested() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(stop_requested());
}

TEST(JobRunner, RunsJobsOldestFirstEndingWithTheAdapterOfADirectRun) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job(1));
  q.add(tiny_job(2, 3));
  std::vector<std::string> seen;
  JobRunnerCallbacks cb;
  cb.on_state = [&](const JobRecord& r) { seen.push_back(std::to_string(r.id) + " " + job_state_name(r.state)); };
  int steps = 0;
  cb.on_step = [&](const JobRecord&, const StepReport&) { ++steps; };
  JobRunnerOptions opt;
  opt.until_empty = true;
  const JobRunnerSummary s = JobRunner(q, opt, cb).run();
  EXPECT_EQ(s.done, 2);
  EXPECT_EQ(s.failed + s.cancelled, 0);
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(seen, (std::vector<std::string>{"1 running", "1 done", "2 running", "2 done"}));
  EXPECT_EQ(steps, 4 + 3);
  for (std::int64_t id : {1, 2}) {
    const JobRecord r = q.get(id);
    EXPECT_EQ(r.state, JobState::Done);
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(r.steps_done, r.total_steps);
    EXPECT_FALSE(r.finished.empty());
    EXPECT_EQ(entries(r, JobState::Done), 1);
    EXPECT_EQ(r.history.at(1).note, "attempt 1, from the start");
    expect_same_adapter(direct_run(r.train, tmp / ("direct" + std::to_string(id))), r.run_dir);
  }
  EXPECT_EQ(q.get(2).total_steps, 3);
}

TEST(JobRunner, AJobThatFailsIsMarkedFailedWithItsErrorAndTheLoopGoesOn) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  fs::copy_file(test::data_path("datasets/tinystories_sample.txt"), tmp / "data.txt");
  TrainOptions bad = tiny_job();
  bad.data.path = tmp / "data.txt";
  JobQueue q(tmp / "queue");
  q.add(bad);  // valid when added...
  q.add(tiny_job());
  std::ofstream(tmp / "data.txt", std::ios::trunc).close();  // ...emptied before it runs
  JobRunnerOptions opt;
  opt.until_empty = true;
  const JobRunnerSummary s = JobRunner(q, opt).run();
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.done, 1);
  const JobRecord r = q.get(1);
  EXPECT_EQ(r.state, JobState::Failed);
  ASSERT_TRUE(r.last_error);
  EXPECT_FALSE(r.last_error->code.empty());
  EXPECT_TRUE(mentions(r.last_error->message, {(tmp / "data.txt").string()}));
  EXPECT_TRUE(mentions(r.history.back().note, {"[" + r.last_error->code + "]", "data.txt"}));
  EXPECT_EQ(q.get(2).state, JobState::Done);
}

TEST(JobRunner, ACancelledRunningJobStopsAtTheStepBoundaryCheckpointed) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job(1, 6));
  q.add(tiny_job(2, 2));
  JobRunnerCallbacks cb;
  cb.on_step = [&](const JobRecord& r, const StepReport& s) {
    if (r.id != 1 || s.step != 2) return;
    JobQueue(tmp / "queue").cancel(1);  // as `schedule cancel 1` from another process
    wait_for_stop_request();
  };
  JobRunnerOptions opt;
  opt.until_empty = true;
  const JobRunnerSummary s = JobRunner(q, opt, cb).run();
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.done, 1);  // the loop went on
  EXPECT_FALSE(s.interrupted);
  const JobRecord r = q.get(1);
  EXPECT_EQ(r.state, JobState::Cancelled);
  EXPECT_EQ(r.steps_done, 2);
  EXPECT_TRUE(mentions(r.history.back().note, {"cancelled while running", "after step 2"}));
  const auto ckpts = list_checkpoints(r.run_dir);
  ASSERT_FALSE(ckpts.empty());
  EXPECT_EQ(ckpts.back().first, 2);
  EXPECT_EQ(q.get(2).state, JobState::Done);
}

TEST(JobRunner, AStoppedRunnerRequeuesItsJobAndTheNextRunResumesItExactly) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job(3, 5));
  q.add(tiny_job(4, 2));
  JobRunnerOptions opt;
  opt.until_empty = true;
  JobRunnerCallbacks cb;
  JobRunner* running = nullptr;
  cb.on_step = [&](const JobRecord&, const StepReport& s) {
    if (s.step == 2) std::thread([&] { running->request_stop(); }).join();  // as the app's stop button would
  };
  JobRunner first(q, opt, cb);
  running = &first;
  JobRunnerSummary s = first.run();
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.done, 0);
  JobRecord r = q.get(1);
  EXPECT_EQ(r.state, JobState::Queued);
  EXPECT_EQ(r.steps_done, 2);
  EXPECT_EQ(q.get(2).state, JobState::Queued);  // nothing after a stop

  std::vector<std::int64_t> first_steps;  // per job: where training picked up
  JobRunnerCallbacks after;
  after.on_step = [&](const JobRecord& j, const StepReport& st) {
    if (static_cast<std::int64_t>(first_steps.size()) < j.id) first_steps.push_back(st.step);
  };
  s = JobRunner(q, opt, after).run();
  EXPECT_EQ(s.done, 2);
  EXPECT_EQ(first_steps, (std::vector<std::int64_t>{3, 1}));  // job 1 resumed after its checkpoint, not redone
  r = q.get(1);
  EXPECT_EQ(r.state, JobState::Done);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(entries(r, JobState::Done), 1);
  EXPECT_TRUE(mentions(r.history.at(r.history.size() - 2).note, {"attempt 2, resuming from step 2"}));
  expect_same_adapter(direct_run(r.train, tmp / "direct"), r.run_dir);
}

TEST(JobRunner, AStopRequestedBeforeRunEndsThatRunWithoutTrainingAndOnlyThatRun) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job(5, 2));
  JobRunnerOptions opt;
  opt.until_empty = true;
  JobRunnerCallbacks cb;
  int states = 0, steps = 0;
  cb.on_state = [&](const JobRecord&) { ++states; };
  cb.on_step = [&](const JobRecord&, const StepReport&) { ++steps; };
  JobRunner runner(q, opt, cb);
  runner.request_stop();  // as the app closing before its runner thread reached run()
  JobRunnerSummary s = runner.run();
  EXPECT_TRUE(s.interrupted);
  EXPECT_EQ(s.done + s.failed + s.cancelled, 0);
  EXPECT_EQ(states + steps, 0);
  JobRecord r = q.get(1);
  EXPECT_EQ(r.state, JobState::Queued);
  EXPECT_EQ(r.attempts, 0);  // not even claimed

  // The request was consumed by the run it ended: the next run trains.
  s = runner.run();
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(s.done, 1);
  EXPECT_EQ(steps, 2);
  r = q.get(1);
  EXPECT_EQ(r.state, JobState::Done);
  EXPECT_EQ(r.attempts, 1);
}

TEST(JobRunner, AStopRacingTheStartOfRunOnAnotherThreadAlwaysEndsIt) {
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  JobRunnerOptions opt;  // an empty queue and no until_empty: only a stop ends run()
  opt.idle_poll_s = 0.05;
  for (int i = 0; i < 20; ++i) {
    JobRunner runner(q, opt);
    std::promise<JobRunnerSummary> ended;
    std::future<JobRunnerSummary> summary = ended.get_future();
    std::thread thread([&] { ended.set_value(runner.run()); });
    runner.request_stop();  // once, at any point of the thread's start
    const bool in_time = summary.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    EXPECT_TRUE(in_time) << "attempt " << i << ": the stop was lost";
    while (summary.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) runner.request_stop();
    thread.join();
    EXPECT_TRUE(summary.get().interrupted) << "attempt " << i;
    if (!in_time) break;
  }
}

TEST(JobRunner, AJobWhoseRunnerDiedAfterItsFinalCheckpointEndsWithItsAdapter) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job(5, 3));
  // What a runner killed between the last checkpoint and the adapter beside it leaves: the job running, its run
  // directory complete but for the PEFT adapter (here: a previous step's).
  const JobRecord claimed = *q.claim_next({});
  direct_run(claimed.train, claimed.run_dir);
  TrainOptions two = claimed.train;
  two.steps = 2;
  direct_run(two, tmp / "two-steps");
  fs::copy_file(tmp / "two-steps" / "adapter_model.safetensors", claimed.run_dir / "adapter_model.safetensors",
                fs::copy_options::overwrite_existing);
  JobRunnerOptions opt;
  opt.until_empty = true;
  EXPECT_EQ(JobRunner(q, opt).run().done, 1);
  const JobRecord r = q.get(1);
  EXPECT_EQ(r.state, JobState::Done);
  EXPECT_EQ(r.steps_done, 3);
  EXPECT_EQ(entries(r, JobState::Done), 1);
  expect_same_adapter(direct_run(r.train, tmp / "direct"), r.run_dir);
}

TEST(JobRunner, TheDevicePolicyHoldsAJobUntilItAllows) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job(6, 3));
  auto policy = [](const nlohmann::json& timeline) {
    auto t = std::make_shared<ScriptedTimeline>(timeline, "inline timeline");
    TrainPolicy p;
    p.sensors = t;
    p.clock = t;
    return p;
  };
  const nlohmann::json unplugged = {
      {"end_s", 600}, {"events", {{{"t", 0}, {"charging", false}, {"battery_percent", 90}, {"battery_temp_c", 30}}}}};
  JobRunnerOptions opt;
  opt.until_empty = true;
  opt.policy = policy(unplugged);
  JobRunnerSummary s = JobRunner(q, opt).run();
  EXPECT_TRUE(mentions(s.policy_stop, {"not charging", "0 of 3 steps"}));
  EXPECT_EQ(s.done, 0);
  EXPECT_EQ(q.get(1).state, JobState::Queued);
  EXPECT_TRUE(list_checkpoints(q.get(1).run_dir).empty());

  const nlohmann::json plugged_later = {
      {"events",
       {{{"t", 0}, {"charging", false}, {"battery_percent", 90}, {"battery_temp_c", 30}},
        {{"t", 300}, {"charging", true}},
        {{"t", 100000}, {"charging", true}}}}};
  opt.policy = policy(plugged_later);
  std::vector<std::string> transitions;
  JobRunnerCallbacks cb;
  cb.on_policy = [&](const JobRecord&, const PolicyTransition& t) {
    transitions.push_back(t.from + "->" + t.to + "@" + std::to_string(static_cast<int>(t.time_s)));
  };
  s = JobRunner(q, opt, cb).run();
  EXPECT_EQ(s.done, 1);
  EXPECT_EQ(transitions, (std::vector<std::string>{"idle->training@300", "training->done@480"}));
  EXPECT_EQ(q.get(1).state, JobState::Done);
}

}  // namespace
}  // namespace pocketlora
