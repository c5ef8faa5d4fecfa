// `pocketlora schedule [--queue DIR] [--json] add | list | cancel | run`: the on-device job queue
// (host/jobs/, docs/JOBS.md). `add` takes the options of `pocketlora train` and refuses a job the trainer would
// refuse; `run` is the foreground service loop that trains the queued jobs one at a time under the device policy.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/jobs/job_queue.h"
#include "host/jobs/job_runner.h"
#include "tools/command_registry.h"
#include "tools/progress_bar.h"
#include "tools/train_options.h"

namespace pocketlora::cli {
namespace {

namespace fs = std::filesystem;

struct ScheduleArgs {
  std::string queue;
  bool json = false;
  TrainArgs train;
  std::string out;                       // add: the job's run directory
  std::int64_t id = 0;                   // cancel
  std::string policy, sensors, backend;  // run
  bool until_empty = false;
};

std::string dash(const std::string& s) { return s.empty() ? "-" : s; }

void warn_problems(const std::vector<JobProblem>& problems) {
  for (const auto& p : problems)
    fmt::print(stderr, "pocketlora: warning: skipped {}: {}\n", p.path.string(), p.message);
}

int run_list(const JobQueue& q, bool json) {
  const JobListing l = q.list();
  if (json) {
    nlohmann::json out = {
        {"queue", q.dir().string()}, {"jobs", nlohmann::json::array()}, {"problems", nlohmann::json::array()}};
    for (const auto& r : l.jobs) out["jobs"].push_back(job_record_json(r));
    for (const auto& p : l.problems) out["problems"].push_back({{"path", p.path.string()}, {"error", p.message}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (l.jobs.empty()) fmt::print("no jobs in {}\n", q.dir().string());
  else
    fmt::print("{:>4} {:<10} {:>8} {:>11} {:<21} {:<21} {}\n", "ID", "STATE", "ATTEMPTS", "STEPS", "CREATED",
               "FINISHED", "DATA / LAST ERROR");
  for (const auto& r : l.jobs) {
    const std::string steps = r.total_steps ? fmt::format("{}/{}", r.steps_done, r.total_steps) : "-";
    const std::string state =
        std::string(job_state_name(r.state)) + (r.cancel_requested && !job_state_final(r.state) ? "*" : "");
    fmt::print("{:>4} {:<10} {:>8} {:>11} {:<21} {:<21} {}\n", r.id, state, r.attempts, steps, r.created,
               dash(r.finished), r.train.data.path.filename().string());
    if (r.last_error) fmt::print("{:>4} {}: [{}] {}\n", "", "error", r.last_error->code, r.last_error->message);
  }
  if (std::any_of(l.jobs.begin(), l.jobs.end(), [](const JobRecord& r) { return r.cancel_requested && !job_state_final(r.state); }))
    fmt::print("(* cancel requested: its runner stops it after the current step)\n");
  warn_problems(l.problems);
  return 0;
}

int run_add(JobQueue& q, const ScheduleArgs& a) {
  TrainOptions o = train_options_from_args(a.train);
  if (!a.out.empty()) o.out = a.out;
  const JobRecord r = q.add(std::move(o));
  if (a.json) std::cout << job_record_json(r).dump(2) << "\n";
  else fmt::print("queued job {} (run directory {})\n", r.id, r.run_dir.string());
  return 0;
}

int run_cancel(JobQueue& q, const ScheduleArgs& a) {
  const JobRecord r = q.cancel(a.id);
  if (a.json) std::cout << job_record_json(r).dump(2) << "\n";
  else if (r.state == JobState::Cancelled) fmt::print("cancelled job {}\n", r.id);
  else fmt::print("job {}: cancel requested; its runner stops it after the current step (checkpointed)\n", r.id);
  return 0;
}

int run_loop(JobQueue& q, const ScheduleArgs& a) {
  JobRunnerOptions o;
  o.policy = parse_train_policy(a.policy, a.sensors);
  if (!a.backend.empty()) o.backend = resolve_backend_kind(a.backend);
  o.until_empty = a.until_empty;
  ProgressBar bar;
  JobRunnerCallbacks cb;
  cb.on_state = [&](const JobRecord& r) {
    bar.finish();
    if (a.json) {
      std::cout << nlohmann::json{{"event", "job"}, {"id", r.id}, {"state", job_state_name(r.state)},
                                  {"note", r.history.empty() ? "" : r.history.back().note}}
                       .dump()
                << std::endl;
      return;
    }
    fmt::print("job {}: {}{}\n", r.id, job_state_name(r.state),
               r.history.empty() || r.history.back().note.empty() ? "" : " (" + r.history.back().note + ")");
    if (r.state == JobState::Done) fmt::print("job {}: adapter in {}\n", r.id, r.run_dir.string());
    std::fflush(stdout);
  };
  cb.on_step = [&](const JobRecord&, const StepReport& s) {
    if (!a.json) bar.update({s.step, s.total, s.loss, s.lr, s.tokens_per_s, s.memory_bytes, s.skipped, s.policy_status});
  };
  cb.on_policy = [&](const JobRecord& r, const PolicyTransition& t) {
    if (a.json) return;
    bar.finish();
    fmt::print("job {}: policy: {} -> {} at t={:.0f}s: {}\n", r.id, t.from, t.to, t.time_s, t.reason);
  };
  cb.on_problem = [](const JobProblem& p) { warn_problems({p}); };
  if (!a.json) fmt::print("running the jobs of {}{}\n", q.dir().string(), a.until_empty ? " until none is runnable" : "");
  JobRunner runner(q, std::move(o), std::move(cb));
  const JobRunnerSummary s = runner.run();
  bar.finish();
  if (a.json) {
    std::cout << nlohmann::json{{"event", "summary"},
                                {"done", s.done},
                                {"failed", s.failed},
                                {"cancelled", s.cancelled},
                                {"interrupted", s.interrupted},
                                {"policy_stop", s.policy_stop}}
                     .dump()
              << std::endl;
    return 0;
  }
  fmt::print("schedule: {} done, {} failed, {} cancelled\n", s.done, s.failed, s.cancelled);
  if (!s.policy_stop.empty()) fmt::print("stopped by the device policy: {}\n", s.policy_stop);
  if (s.interrupted) fmt::print("stopped; the job that was running resumes from its checkpoint at the next run\n");
  return 0;
}

CommandRegistration register_cmd_schedule(
    "schedule", "The on-device job queue: add, list, cancel training jobs; run them under the device policy",
    [](CLI::App& sub) {
      sub.require_subcommand(1);
      sub.fallthrough();  // --queue / --json also after the subcommand
      auto a = std::make_shared<ScheduleArgs>();
      sub.add_option("--queue", a->queue,
                     "Job queue directory (default: $POCKETLORA_HOME/queue, else ~/.pocketlora/queue)");
      sub.add_flag("--json", a->json, "Machine-readable output");
      auto queue = [a] { return JobQueue(a->queue.empty() ? JobQueue::default_dir() : fs::path(a->queue)); };
      auto actions = std::make_shared<std::vector<std::pair<CLI::App*, Action>>>();
      auto on = [actions](CLI::App* c, Action act) { actions->emplace_back(c, std::move(act)); };

      CLI::App* add = sub.add_subcommand(
          "add", "Queue a training job: the options of `pocketlora train`, checked now as the trainer will");
      add_train_options(*add, a->train);
      add->add_option("--out", a->out, "the job's run directory (new or empty; default: QUEUE/runs/ID)");
      on(add, [=] {
        JobQueue q = queue();
        return run_add(q, *a);
      });

      on(sub.add_subcommand("list", "Every job with its state (unreadable entries are warned about and skipped)"),
         [=] { return run_list(queue(), a->json); });

      CLI::App* cancel = sub.add_subcommand(
          "cancel", "Cancel a queued job, or stop a running one after its current step (checkpointed)");
      cancel->add_option("id", a->id, "Job id (schedule list)")->required();
      on(cancel, [=] {
        JobQueue q = queue();
        return run_cancel(q, *a);
      });

      CLI::App* run = sub.add_subcommand(
          "run", "Train the queued jobs one at a time, oldest first, when the device policy allows (Ctrl-C: "
                 "checkpoint the running job and exit)");
      add_policy_options(*run, a->policy, a->sensors);
      run->add_option("--backend", a->backend, "run every job on this backend (auto, cpu, vulkan) instead of its own");
      run->add_flag("--until-empty", a->until_empty, "exit when no job is runnable (else wait for new jobs)");
      on(run, [=] {
        JobQueue q = queue();
        return run_loop(q, *a);
      });

      return Action([actions] {
        for (const auto& [c, act] : *actions)
          if (c->parsed()) return act();
        throw InvalidArgument("schedule: no subcommand given");
      });
    });

}  // namespace
}  // namespace pocketlora::cli
