#pragma once
// Runs the job queue's jobs one at a time through the Trainer, under the device policy (docs/JOBS.md): what
// `pocketlora schedule run` is, and what the C API and `pocketlora serve` drive.
//
// Each round claims the oldest runnable job (JobQueue::claim_next) and trains it in its run directory, resuming
// from its latest checkpoint when it has one (a job whose runner was killed, or stopped, mid-run: the trainer's
// exact resume, so the result is the uninterrupted run's bit for bit on the CPU backend). The policy is asked
// before every step (Trainer, docs/POLICY.md). Outcomes: all steps -> done; an error -> failed with the error's
// code and message, and the loop goes on; a cancel (JobQueue::cancel, from any process) -> stopped at the next
// step boundary, checkpointed, cancelled; a stop (request_stop from another thread, Ctrl-C, SIGTERM) -> checkpointed,
// back to queued, and run() returns; the policy's sensors ending while it waits -> queued, and run() returns.
#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "host/jobs/job_queue.h"
#include "host/train/trainer.h"

namespace pocketlora {

struct JobRunnerOptions {
  std::optional<TrainPolicy> policy;   // none: jobs train as soon as they are claimed
  std::optional<BackendKind> backend;  // overrides every job's backend
  bool until_empty = false;            // return when no job is runnable (else wait for new ones)
  double idle_poll_s = 2.0;            // how often an empty queue is looked at again
  double progress_every_s = 5.0;       // how often a running job's steps_done is written to its entry
  double cancel_poll_s = 0.1;          // how often a running job's entry is read for a cancel request
};

struct JobRunnerCallbacks {
  // A job entered `record.state` (running, done, failed, cancelled, or queued again after a stop).
  std::function<void(const JobRecord& record)> on_state;
  std::function<void(const JobRecord& record, const StepReport& step)> on_step;
  std::function<void(const JobRecord& record, const PolicyTransition& transition)> on_policy;
  // An entry of the queue that cannot be read (reported once per path and run), skipped.
  std::function<void(const JobProblem& problem)> on_problem;
};

struct JobRunnerSummary {
  int done = 0, failed = 0, cancelled = 0;
  bool interrupted = false;  // a stop request ended the run
  std::string policy_stop;   // the policy's sensors ended while a job waited (the job stays queued)
};

class JobRunner {
 public:
  JobRunner(JobQueue& queue, JobRunnerOptions options, JobRunnerCallbacks callbacks = {});
  // Holds the queue's runner lock (JobQueue::lock_runner) for its duration; installs the Ctrl-C/SIGTERM handlers
  // (host/util/stop_request.h) while it runs.
  JobRunnerSummary run();
  // From any thread (or a signal, through stop_request.h): the running job stops after its current step,
  // checkpointed, and goes back to queued; run() returns with `interrupted`. A request made before run() starts
  // is not lost: that run() returns at once, interrupted, claiming no job. The run() a stop ends consumes it (one
  // made after run() returned ends the next run()).
  void request_stop();

 private:
  enum class Outcome { Done, Failed, Cancelled, Stopped, PolicyEnded };
  Outcome run_job(JobRecord& job, JobRunnerSummary& summary);
  bool stopping() const;
  JobQueue& queue_;
  JobRunnerOptions opt_;
  JobRunnerCallbacks cb_;
  std::atomic<bool> stop_{false};
};

}  // namespace pocketlora
