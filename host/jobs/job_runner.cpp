#include "host/jobs/job_runner.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "host/core/error.h"
#include "host/train/checkpoint.h"
#include "host/util/stop_request.h"
#include "host/util/utc_time.h"

namespace pocketlora {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The step a job resumes from (its latest complete checkpoint), or nullopt when it starts from the beginning.
std::optional<std::int64_t> resume_step(const fs::path& run_dir) {
  const auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().first;
}

// While a job trains: reads its entry for a cancel request and turns that, a stop of the runner or a signal into
// the trainer's stop request (polled at step boundaries and in policy waits). The trainer clears the flag when it
// starts, so the request is asserted again on every poll rather than once.
class StopWatcher {
 public:
  StopWatcher(JobQueue& queue, std::int64_t id, const std::atomic<bool>& runner_stop, double poll_s)
      : thread_([this, &queue, id, &runner_stop, poll_s] {
          std::unique_lock lock(m_);
          while (!done_) {
            // A stop flag this watcher did not raise is a signal or another thread's request_stop(): the runner
            // stops after this job. (One raised for a cancel is not; see docs/JOBS.md on a Ctrl-C in that window.)
            if (runner_stop || (!raised_ && stop_requested())) interrupted_ = true;
            if (!cancelled_) {
              try {
                cancelled_ = queue.get(id).cancel_requested;
              } catch (const Error&) {  // replaced or garbled meanwhile: looked at again at the next poll
              }
            }
            if ((interrupted_ || cancelled_) && !stop_requested()) {
              raised_ = true;
              request_stop();
            }
            cv_.wait_for(lock, std::chrono::duration<double>(poll_s));
          }
        }) {}
  ~StopWatcher() { finish(); }
  void finish() {
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (!raised_ && stop_requested()) interrupted_ = true;  // a signal the trainer saw before this watcher did
  }
  bool interrupted() const { return interrupted_; }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> interrupted_{false}, cancelled_{false}, raised_{false};
  std::thread thread_;  // last: started once the members it reads exist
};

}  // namespace

JobRunner::JobRunner(JobQueue& queue, JobRunnerOptions options, JobRunnerCallbacks callbacks)
    : queue_(queue), opt_(std::move(options)), cb_(std::move(callbacks)) {}

void JobRunner::request_stop() {
  stop_ = true;
  pocketlora::request_stop();  // the trainer's flag: ends a step or a policy wait in progress
}

bool JobRunner::stopping() const { return stop_ || stop_requested(); }

JobRunnerSummary JobRunner::run() {
  const FileLock runner_lock = queue_.lock_runner();
  StopRequestScope signals;
  // The trainer's flag may be left over from earlier work in this process; the runner's own stop_ is kept, so a
  // request_stop() made before this point still ends the run (at the first look, claiming nothing).
  clear_stop_request();
  JobRunnerSummary sum;
  std::set<fs::path> reported;
  for (;;) {
    if (stopping()) {
      sum.interrupted = true;
      break;
    }
    for (const auto& p : queue_.list().problems)
      if (reported.insert(p.path).second && cb_.on_problem) cb_.on_problem(p);
    std::optional<JobRecord> job = queue_.claim_next([](const JobRecord& r) {
      const auto from = resume_step(r.run_dir);
      return from ? fmt::format("attempt {}, resuming from step {}", r.attempts, *from)
                  : fmt::format("attempt {}, from the start", r.attempts);
    });
    if (!job) {
      if (opt_.until_empty) break;
      const auto until = Clock::now() + std::chrono::duration<double>(opt_.idle_poll_s);
      while (Clock::now() < until && !stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    const Outcome o = run_job(*job, sum);
    if (o == Outcome::Stopped) {
      sum.interrupted = true;
      break;
    }
    if (o == Outcome::PolicyEnded) break;
  }
  // A stop is consumed by the run it ends: one that came after the loop's last look still ends this run (it was
  // made during it); one made after run() returns waits for the next run().
  if (stop_.exchange(false)) sum.interrupted = true;
  return sum;
}

JobRunner::Outcome JobRunner::run_job(JobRecord& job, JobRunnerSummary& sum) {
  if (cb_.on_state) cb_.on_state(job);
  TrainOptions o = job.train;
  o.out = job.run_dir;
  if (opt_.backend) o.backend = *opt_.backend;
  if (resume_step(job.run_dir)) o.resume = job.run_dir;
  o.policy = opt_.policy;

  std::optional<JobError> failure;
  TrainSummary ts;
  bool ran = false;
  StopWatcher watcher(queue_, job.id, stop_, opt_.cancel_poll_s);
  try {
    Trainer trainer(o);
    job = queue_.update(job.id, [&](JobRecord& r) {
      r.total_steps = trainer.total_steps();
      r.steps_done = trainer.start_step();
    });
    // A stop that came while the model loaded: the job goes back untouched (the trainer would clear the flag).
    if (!stopping()) {
      auto last_progress = Clock::now();
      ts = trainer.run(
          [&](const StepReport& r) {
            if (std::chrono::duration<double>(Clock::now() - last_progress).count() >= opt_.progress_every_s) {
              last_progress = Clock::now();
              job = queue_.update(job.id, [&](JobRecord& rec) { rec.steps_done = r.step; });
            }
            if (cb_.on_step) cb_.on_step(job, r);
          },
          [&](const PolicyTransition& t) {
            if (cb_.on_policy) cb_.on_policy(job, t);
          });
      ran = true;
    }
  } catch (const Error& e) {
    failure = JobError{error_code_name(e.code()), e.what()};
  } catch (const std::exception& e) {  // std::bad_alloc, a filesystem_error: still the job's failure, not the loop's
    failure = JobError{"internal", e.what()};
  }
  watcher.finish();
  const bool interrupted = watcher.interrupted() || stop_;
  if (!interrupted) clear_stop_request();  // raised for a cancel only: the next job starts clean

  Outcome outcome = Outcome::Stopped;
  job = queue_.update(job.id, [&](JobRecord& r) {
    const std::string now = utc_now_iso8601();
    auto enter = [&](JobState s, std::string note) {
      r.state = s;
      if (job_state_final(s)) r.finished = now;
      r.history.push_back({now, job_state_name(s), std::move(note)});
    };
    if (ran) r.steps_done = ts.steps_done;
    const bool all_steps = ran && ts.steps_done == ts.total_steps;
    if (failure) {
      r.last_error = failure;
      enter(JobState::Failed, fmt::format("[{}] {}", failure->code, failure->message));
      outcome = Outcome::Failed;
    } else if (all_steps) {
      enter(JobState::Done, fmt::format("{} steps done", ts.total_steps));
      outcome = Outcome::Done;
    } else if (r.cancel_requested) {
      enter(JobState::Cancelled, fmt::format("cancelled while running, after step {} (checkpointed)", r.steps_done));
      outcome = Outcome::Cancelled;
    } else if (ran && !ts.policy_stop.empty()) {
      enter(JobState::Queued, "waiting for the device policy when its sensors ended: " + ts.policy_stop);
      outcome = Outcome::PolicyEnded;
    } else if (interrupted || !ran) {
      enter(JobState::Queued, fmt::format("stopped after step {}; resumes from its checkpoint", r.steps_done));
      outcome = Outcome::Stopped;
    } else {
      r.last_error = JobError{"internal", fmt::format("the trainer returned after {} of {} steps without a reason",
                                                      ts.steps_done, ts.total_steps)};
      enter(JobState::Failed, r.last_error->message);
      outcome = Outcome::Failed;
    }
  });
  switch (outcome) {
    case Outcome::Done: ++sum.done; break;
    case Outcome::Failed: ++sum.failed; break;
    case Outcome::Cancelled: ++sum.cancelled; break;
    case Outcome::PolicyEnded: sum.policy_stop = ts.policy_stop; break;
    case Outcome::Stopped: break;
  }
  if (cb_.on_state) cb_.on_state(job);
  return outcome;
}

}  // namespace pocketlora
