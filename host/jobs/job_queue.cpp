#include "host/jobs/job_queue.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <system_error>

#include "host/backend/backend.h"
#include "host/jobs/train_options_json.h"
#include "host/util/atomic_file.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"
#include "host/util/utc_time.h"

namespace pocketlora {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kJobFormat = "pocketlora-job";
constexpr const char* kQueueFormat = "pocketlora-job-queue";
constexpr std::int64_t kVersion = 1;
constexpr JobState kAllStates[] = {JobState::Queued, JobState::Running, JobState::Done, JobState::Failed,
                                   JobState::Cancelled};

JobState parse_state(const std::string& s, const std::string& origin) {
  for (JobState st : kAllStates)
    if (s == job_state_name(st)) return st;
  throw FormatError(fmt::format("{}: field 'state': '{}' is not one of queued, running, done, failed, cancelled",
                                origin, s));
}

json parse_json_file(const fs::path& path) {
  const std::string text = read_file_text(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw FormatError(fmt::format("{}: not valid JSON ({})", path.string(), e.what()));
  }
}

void check_format(const json& j, const char* format, const std::string& origin) {
  if (!j.is_object()) throw FormatError(fmt::format("{}: expected a JSON object, found {}", origin, j.type_name()));
  const std::string f = json_field::string(j, "format", origin);
  if (f != format) throw FormatError(fmt::format("{}: field 'format': expected '{}', found '{}'", origin, format, f));
  const std::int64_t v = json_field::integer(j, "version", origin);
  if (v != kVersion)
    throw FormatError(fmt::format("{}: field 'version': this build reads version {}, found {}", origin, kVersion, v));
}

// "000042.json" -> 42; nullopt for any other name.
std::optional<std::int64_t> job_id_of(const std::string& filename) {
  if (filename.size() < 6 || !filename.ends_with(".json")) return std::nullopt;
  const std::string_view digits(filename.data(), filename.size() - 5);
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id < 1 || digits.size() < 6) return std::nullopt;
  return id;
}

bool is_empty_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::directory_iterator(p, ec) == fs::directory_iterator();
}

}  // namespace

const char* job_state_name(JobState s) {
  switch (s) {
    case JobState::Queued: return "queued";
    case JobState::Running: return "running";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "?";
}

bool job_state_final(JobState s) { return s == JobState::Done || s == JobState::Failed || s == JobState::Cancelled; }

json job_record_json(const JobRecord& r) {
  json history = json::array();
  for (const auto& e : r.history) history.push_back({{"at", e.at}, {"state", e.state}, {"note", e.note}});
  auto opt_str = [](const std::string& s) { return s.empty() ? json() : json(s); };
  return {{"format", kJobFormat},
          {"version", kVersion},
          {"id", r.id},
          {"state", job_state_name(r.state)},
          {"run_dir", r.run_dir.string()},
          {"created", r.created},
          {"started", opt_str(r.started)},
          {"finished", opt_str(r.finished)},
          {"attempts", r.attempts},
          {"steps_done", r.steps_done},
          {"total_steps", r.total_steps},
          {"cancel_requested", r.cancel_requested},
          {"last_error",
           r.last_error ? json{{"code", r.last_error->code}, {"message", r.last_error->message}} : json()},
          {"train", train_options_json(r.train)},
          {"history", history}};
}

JobRecord parse_job_record(const json& j, const std::string& origin) {
  check_format(j, kJobFormat, origin);
  static const std::vector<std::string> known = {
      "format",   "version",    "id",          "state",            "run_dir",    "created", "started", "finished",
      "attempts", "steps_done", "total_steps", "cancel_requested", "last_error", "train",   "history"};
  for (const auto& [k, v] : j.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw FormatError(fmt::format("{}: unknown field '{}'", origin, k));
  JobRecord r;
  r.id = json_field::integer(j, "id", origin);
  if (r.id < 1) throw FormatError(fmt::format("{}: field 'id': expected a positive integer, found {}", origin, r.id));
  r.state = parse_state(json_field::string(j, "state", origin), origin);
  r.run_dir = json_field::string(j, "run_dir", origin);
  r.created = json_field::string(j, "created", origin);
  r.started = json_field::opt_string(j, "started", origin).value_or("");
  r.finished = json_field::opt_string(j, "finished", origin).value_or("");
  r.attempts = json_field::integer(j, "attempts", origin);
  r.steps_done = json_field::integer(j, "steps_done", origin);
  r.total_steps = json_field::integer(j, "total_steps", origin);
  r.cancel_requested = json_field::opt_bool(j, "cancel_requested", origin).value_or(false);
  if (r.attempts < 0 || r.steps_done < 0 || r.total_steps < 0)
    throw FormatError(fmt::format("{}: attempts, steps_done and total_steps must be >= 0", origin));
  if (j.contains("last_error") && !j["last_error"].is_null()) {
    const json& e = j["last_error"];
    const std::string where = origin + " (last_error)";
    r.last_error = JobError{json_field::string(e, "code", where), json_field::string(e, "message", where)};
  }
  if (!j.contains("train")) throw FormatError(fmt::format("{}: missing field 'train'", origin));
  r.train = parse_train_options_json(j["train"], origin);
  r.train.out = r.run_dir;
  if (j.contains("history")) {
    const json& h = j["history"];
    if (!h.is_array()) throw FormatError(fmt::format("{}: field 'history': expected an array", origin));
    for (std::size_t i = 0; i < h.size(); ++i) {
      const std::string where = fmt::format("{} (history[{}])", origin, i);
      r.history.push_back({json_field::string(h[i], "at", where), json_field::string(h[i], "state", where),
                           json_field::string(h[i], "note", where)});
    }
  }
  return r;
}

void validate_train_job(const TrainOptions& options) {
  if (options.resume) throw InvalidArgument("a queued job cannot name --resume: the queue resumes its jobs itself");
  if (options.policy)
    throw InvalidArgument("a queued job cannot carry a device policy: `schedule run --policy` applies one to all");
  Trainer check(options, make_backend(BackendKind::Cpu));
}

fs::path JobQueue::default_dir() {
  if (const char* home = std::getenv("POCKETLORA_HOME"); home && *home) return fs::path(home) / "queue";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".pocketlora" / "queue";
  throw InvalidArgument("no job queue directory: set POCKETLORA_HOME or HOME, or pass --queue");
}

JobQueue::JobQueue(fs::path dir) : dir_(fs::absolute(std::move(dir))) {}

fs::path JobQueue::job_path(std::int64_t id) const { return dir_ / "jobs" / fmt::format("{:06}.json", id); }

FileLock JobQueue::lock() const { return FileLock(dir_ / "queue.lock"); }

void JobQueue::write(const JobRecord& r) const {
  std::error_code ec;
  fs::create_directories(dir_ / "jobs", ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", (dir_ / "jobs").string(), ec.message()));
  write_file_atomic(job_path(r.id), job_record_json(r).dump(2) + "\n");
}

JobListing JobQueue::list_unlocked() const {
  JobListing out;
  const fs::path jobs = dir_ / "jobs";
  std::error_code ec;
  if (!fs::is_directory(jobs, ec)) return out;
  for (const auto& e : fs::directory_iterator(jobs, ec)) {
    const std::string name = e.path().filename().string();
    if (is_atomic_temp_name(name)) continue;  // a write in progress, or what a killed writer left
    const auto id = job_id_of(name);
    if (!id) {
      out.problems.push_back({e.path(), "not a job file (expected NNNNNN.json)"});
      continue;
    }
    try {
      JobRecord r = parse_job_record(parse_json_file(e.path()), e.path().string());
      if (r.id != *id)
        throw FormatError(fmt::format("{}: field 'id': the file is named for job {}, found {}", e.path().string(), *id,
                                      r.id));
      out.jobs.push_back(std::move(r));
    } catch (const Error& err) {
      out.problems.push_back({e.path(), err.what()});
    }
  }
  if (ec) throw IoError(fmt::format("cannot list '{}': {}", jobs.string(), ec.message()));
  std::sort(out.jobs.begin(), out.jobs.end(), [](const JobRecord& a, const JobRecord& b) { return a.id < b.id; });
  std::sort(out.problems.begin(), out.problems.end(),
            [](const JobProblem& a, const JobProblem& b) { return a.path < b.path; });
  return out;
}

JobListing JobQueue::list() const { return list_unlocked(); }

JobRecord JobQueue::get(std::int64_t id) const {
  const fs::path p = job_path(id);
  std::error_code ec;
  if (id < 1 || !fs::exists(p, ec)) throw InvalidArgument(fmt::format("no job {} in the queue {}", id, dir_.string()));
  JobRecord r = parse_job_record(parse_json_file(p), p.string());
  if (r.id != id)
    throw FormatError(fmt::format("{}: field 'id': the file is named for job {}, found {}", p.string(), id, r.id));
  return r;
}

JobRecord JobQueue::add(TrainOptions options) {
  options.model = fs::absolute(options.model);
  if (!options.tokenizer.empty()) options.tokenizer = fs::absolute(options.tokenizer);
  options.data.path = fs::absolute(options.data.path);
  const bool own_run_dir = !options.out.empty();
  if (own_run_dir) {
    options.out = fs::absolute(options.out);
    std::error_code ec;
    if (fs::exists(options.out, ec) && !is_empty_dir(options.out))
      throw InvalidArgument(fmt::format("--out {}: exists and is not an empty directory; a queued job needs a run "
                                        "directory of its own",
                                        options.out.string()));
  } else {
    options.out = dir_ / "runs" / "new";  // the trainer's check needs one; the real one follows the id
  }
  validate_train_job(options);  // slow (loads the model and the data): outside the lock

  const FileLock held = lock();
  // The queue's counter, and never below an existing job: a kill between a job file and the counter's update
  // must not hand the same id out twice.
  const fs::path qfile = dir_ / "queue.json";
  std::int64_t next = 1;
  std::error_code ec;
  if (fs::exists(qfile, ec)) {
    const json q = parse_json_file(qfile);
    check_format(q, kQueueFormat, qfile.string());
    next = json_field::integer(q, "next_id", qfile.string());
  }
  remove_stale_atomic_temps(dir_ / "jobs");
  const JobListing existing = list_unlocked();
  for (const auto& j : existing.jobs) {
    next = std::max(next, j.id + 1);
    if (own_run_dir && j.run_dir == options.out)
      throw InvalidArgument(fmt::format("--out {}: already the run directory of job {}", options.out.string(), j.id));
  }
  for (const auto& p : existing.problems)  // a garbled entry still holds its id
    if (const auto id = job_id_of(p.path.filename().string())) next = std::max(next, *id + 1);

  JobRecord r;
  r.id = next;
  r.run_dir = own_run_dir ? options.out : dir_ / "runs" / std::to_string(r.id);
  options.out = r.run_dir;
  r.train = std::move(options);
  r.created = utc_now_iso8601();
  r.history.push_back({r.created, job_state_name(JobState::Queued), "added"});
  write(r);
  write_file_atomic(qfile, json{{"format", kQueueFormat}, {"version", kVersion}, {"next_id", r.id + 1}}.dump(2) + "\n");
  return r;
}

JobRecord JobQueue::cancel(std::int64_t id) {
  const FileLock held = lock();
  JobRecord r = get(id);
  if (job_state_final(r.state))
    throw InvalidArgument(fmt::format("job {} is already {}: nothing to cancel", id, job_state_name(r.state)));
  const std::string now = utc_now_iso8601();
  if (r.state == JobState::Queued) {
    r.state = JobState::Cancelled;
    r.finished = now;
    r.history.push_back({now, job_state_name(JobState::Cancelled), "cancelled while queued"});
  } else if (!r.cancel_requested) {
    r.cancel_requested = true;
    r.history.push_back({now, job_state_name(JobState::Running), "cancel requested while running"});
  }
  write(r);
  return r;
}

std::optional<JobRecord> JobQueue::claim_next(const std::function<std::string(const JobRecord&)>& note) {
  const FileLock held = lock();
  for (JobRecord r : list_unlocked().jobs) {
    if (r.state != JobState::Queued && r.state != JobState::Running) continue;
    const std::string now = utc_now_iso8601();
    if (r.cancel_requested) {  // its runner died before it could stop it
      r.state = JobState::Cancelled;
      r.finished = now;
      r.history.push_back({now, job_state_name(JobState::Cancelled), "cancelled (its runner had stopped)"});
      write(r);
      continue;
    }
    r.state = JobState::Running;
    ++r.attempts;
    r.started = now;
    r.history.push_back({now, job_state_name(JobState::Running), note ? note(r) : ""});
    write(r);
    return r;
  }
  return std::nullopt;
}

JobRecord JobQueue::update(std::int64_t id, const std::function<void(JobRecord&)>& change) {
  const FileLock held = lock();
  JobRecord r = get(id);
  change(r);
  write(r);
  return r;
}

FileLock JobQueue::lock_runner() const {
  const fs::path path = dir_ / "runner.lock";
  std::optional<FileLock> l = FileLock::try_lock(path);
  if (!l) {
    std::string holder = "another process";
    try {
      const std::string pid = read_file_text(path);
      if (!pid.empty()) holder = "pid " + pid.substr(0, pid.find('\n'));
    } catch (const Error&) {  // only for the message
    }
    throw InvalidArgument(fmt::format("the job queue {} is already being run by {} (one runner per queue)",
                                      dir_.string(), holder));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(l->fd(), 0) != 0 || ::pwrite(l->fd(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw IoError(fmt::format("cannot write the runner's pid to '{}'", path.string()));
  return std::move(*l);
}

}  // namespace pocketlora
