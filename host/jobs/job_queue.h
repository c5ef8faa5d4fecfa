#pragma once
// The on-device job queue: training jobs waiting for the device (docs/JOBS.md). State lives on disk, one
// directory, so it survives restarts of the process that runs the jobs (`pocketlora schedule run`, later the app):
//
//   DIR/queue.json        {"format": "pocketlora-job-queue", "version": 1, "next_id": N}
//   DIR/jobs/000001.json  one file per job (job_record_json): its training options, run directory, state, times,
//                         attempts, progress, last error and a history of its transitions
//   DIR/runs/1/           a job's run directory unless it was given one (checkpoints, adapter, metrics)
//   DIR/queue.lock        flock held around every read-modify-write (add, cancel, the runner's transitions)
//   DIR/runner.lock       flock held by the one runner of the queue for as long as it runs (holds its pid)
//
// Every file is replaced atomically (temp + fsync + rename), so a reader without the lock sees the old or the new
// version of a job, never a torn one, and a SIGKILL at any point loses nothing that was committed. Entries that
// cannot be read (garbled JSON, a wrong field, a file named like no job) are reported by path and skipped: one
// bad file never hides the rest of the queue, and never crashes a reader.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/train/trainer.h"
#include "host/util/file_lock.h"

namespace pocketlora {

// queued: waiting; running: claimed by a runner (found so by a new runner: its runner died or stopped, and the
// job resumes from its checkpoint); done, failed, cancelled: final.
enum class JobState { Queued, Running, Done, Failed, Cancelled };
const char* job_state_name(JobState s);  // "queued", "running", "done", "failed", "cancelled"
bool job_state_final(JobState s);

struct JobEvent {
  std::string at;     // UTC, ISO 8601
  std::string state;  // the state entered
  std::string note;   // why: "added", "attempt 2, resuming from step 4", "[format] data.txt: ...", ...
};

struct JobError {
  std::string code;  // error_code_name of the error ("format", "io", ...)
  std::string message;
};

struct JobRecord {
  std::int64_t id = 0;
  JobState state = JobState::Queued;
  TrainOptions train;  // out == run_dir; no resume, no policy (see host/jobs/train_options_json.h)
  std::filesystem::path run_dir;
  std::string created, started, finished;  // empty until it happens; started is the latest attempt's start
  std::int64_t attempts = 0;               // times a runner started (or resumed) it
  std::int64_t steps_done = 0, total_steps = 0;  // progress, as last recorded by the runner
  bool cancel_requested = false;                 // cancel of a running job: its runner stops it at a step boundary
  std::optional<JobError> last_error;
  std::vector<JobEvent> history;
};

nlohmann::json job_record_json(const JobRecord& r);
// FormatError naming `origin` and the field for anything out of place.
JobRecord parse_job_record(const nlohmann::json& j, const std::string& origin);

struct JobProblem {
  std::filesystem::path path;
  std::string message;
};

struct JobListing {
  std::vector<JobRecord> jobs;  // by id
  std::vector<JobProblem> problems;
};

class JobQueue {
 public:
  // $POCKETLORA_HOME/queue, else $HOME/.pocketlora/queue.
  static std::filesystem::path default_dir();

  // Nothing is created until the first write; a queue that does not exist lists as empty.
  explicit JobQueue(std::filesystem::path dir);
  const std::filesystem::path& dir() const { return dir_; }

  // Checks the job as the trainer will (validate_train_job), then gives it the next id and writes it queued.
  // options.out: its run directory (made absolute; it must not exist yet or be empty, and no other job may use
  // it); empty: DIR/runs/<id>. Model, tokenizer and data paths are made absolute (the runner may run elsewhere).
  // options.resume and options.policy must be unset (the queue resumes; the runner has the policy).
  JobRecord add(TrainOptions options);

  JobListing list() const;
  // InvalidArgument when no job has this id; FormatError naming the file when its entry cannot be read.
  JobRecord get(std::int64_t id) const;
  // A queued job becomes cancelled; a running one gets cancel_requested (its runner stops it after the current
  // step, checkpointed, and marks it cancelled). InvalidArgument for a job already done, failed or cancelled.
  JobRecord cancel(std::int64_t id);

  // For the runner. Under the queue lock: the oldest job that is queued or running (a running one was left by a
  // runner that died or was stopped) becomes running (attempts + 1, started, history); a running job whose cancel
  // was requested becomes cancelled on the way. nullopt when no job is runnable. `note` goes to the history.
  std::optional<JobRecord> claim_next(const std::function<std::string(const JobRecord&)>& note);
  // Read-modify-write of one job under the queue lock; returns what was written.
  JobRecord update(std::int64_t id, const std::function<void(JobRecord&)>& change);

  // The runner's lock (held for as long as the returned lock lives): InvalidArgument naming the holder's pid when
  // another runner has this queue.
  FileLock lock_runner() const;

 private:
  std::filesystem::path job_path(std::int64_t id) const;
  FileLock lock() const;
  void write(const JobRecord& r) const;
  JobListing list_unlocked() const;
  std::filesystem::path dir_;
};

// Everything the trainer checks before any work (options, model, tokenizer, data, the memory plan), by
// constructing a Trainer on the CPU backend: a job that cannot run is refused when it is added, not at 3 a.m.
// Device-specific limits (a --max-memory that only a Vulkan device's op scratch breaks) surface when it runs.
void validate_train_job(const TrainOptions& options);

}  // namespace pocketlora
