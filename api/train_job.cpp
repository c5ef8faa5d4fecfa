// pl_train_job_*: a Trainer run on a worker thread the job owns, controlled (pause / resume / cancel) through a
// TrainControl and fed pushed sensor readings for its device policy.
#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/model.h"
#include "host/core/error.h"
#include "host/policy/device_policy.h"
#include "host/policy/pushed_sensors.h"
#include "host/train/train_control.h"
#include "host/train/train_job_config.h"
#include "host/train/trainer.h"

using namespace pocketlora;
using namespace pocketlora::capi;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool ended(pl_job_state s) { return s == PL_JOB_FINISHED || s == PL_JOB_CANCELLED || s == PL_JOB_FAILED; }

const char* job_state_name(pl_job_state s) {
  switch (s) {
    case PL_JOB_CREATED: return "created";
    case PL_JOB_RUNNING: return "running";
    case PL_JOB_PAUSED: return "paused";
    case PL_JOB_WAITING: return "waiting";
    case PL_JOB_FINISHED: return "finished";
    case PL_JOB_CANCELLED: return "cancelled";
    case PL_JOB_FAILED: return "failed";
    default: break;
  }
  return "unknown";
}

// The policy's time for an API job: the steady clock, whose waits end early when the job is paused or cancelled
// (the CLI's clock wakes on Ctrl-C instead).
class ControlClock final : public PolicyClock {
 public:
  explicit ControlClock(std::shared_ptr<TrainControl> c) : control_(std::move(c)) {}
  double now_s() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  }
  void wait_s(double seconds) override { control_->sleep_for(seconds); }
  double step_done(double measured_s) override { return measured_s; }

 private:
  std::shared_ptr<TrainControl> control_;
  std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
};

std::optional<double> known(double v) { return std::isnan(v) ? std::nullopt : std::optional<double>(v); }

std::optional<bool> tristate(pl_tristate t, const char* field) {
  switch (t) {
    case PL_UNKNOWN: return std::nullopt;
    case PL_FALSE: return false;
    case PL_TRUE: return true;
    default: break;
  }
  throw InvalidArgument(fmt::format("pl_train_job_push_sensors: {} is {}: expected PL_UNKNOWN, PL_FALSE or PL_TRUE",
                                    field, static_cast<int>(t)));
}

SensorReadings to_readings(const pl_sensor_readings& c) {
  SensorReadings r;
  r.battery_percent = known(c.battery_percent);
  r.charging = tristate(c.charging, "charging");
  r.battery_temp_c = known(c.battery_temp_c);
  r.screen_on = tristate(c.screen_on, "screen_on");
  switch (c.user_override) {
    case PL_OVERRIDE_NONE: r.user_override = UserOverride::None; break;
    case PL_OVERRIDE_PAUSE: r.user_override = UserOverride::Pause; break;
    case PL_OVERRIDE_TRAIN: r.user_override = UserOverride::Train; break;
    default:
      throw InvalidArgument(fmt::format("pl_train_job_push_sensors: user_override is {}: expected PL_OVERRIDE_NONE, "
                                        "_PAUSE or _TRAIN",
                                        static_cast<int>(c.user_override)));
  }
  if (c.zone_count > 0 && !c.zones)
    throw InvalidArgument(fmt::format("pl_train_job_push_sensors: zone_count {} with zones NULL", c.zone_count));
  for (std::size_t i = 0; i < c.zone_count; ++i) {
    if (!c.zones[i].name) throw InvalidArgument(fmt::format("pl_train_job_push_sensors: zones[{}].name is NULL", i));
    r.zones.push_back({c.zones[i].name, known(c.zones[i].temperature_c)});
  }
  return r;
}

nlohmann::json optional_number(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json();
}

}  // namespace

struct pl_train_job : Handle {
  // Set at create, then read-only.
  std::shared_ptr<TrainControl> control = std::make_shared<TrainControl>();
  std::shared_ptr<PushedSensors> sensors = std::make_shared<PushedSensors>();
  std::optional<DevicePolicy> temperature_policy;  // only asked for the temperature it would act on
  pl_train_callback callback = nullptr;
  void* user_data = nullptr;

  std::mutex mu;  // everything below
  std::condition_variable done_cv;
  pl_job_state state = PL_JOB_CREATED;
  std::unique_ptr<Trainer> trainer;  // released when the run ends (with it the model and data)
  std::thread worker;
  std::thread::id worker_id;
  bool started = false, worker_done = false;
  pl_status error_status = PL_OK;
  std::string error_message;
  std::optional<TrainSummary> summary;
  // The last step's numbers, repeated in state-change reports.
  std::int64_t step = 0, total_steps = 0;
  double loss = kNaN, lr = 0, tokens_per_s = 0;
  std::string message;
  // Under a device policy: whether it holds the job (it starts Idle, so a job waits until its first Training
  // transition); a resumed pause goes back to this state.
  bool has_policy = false, policy_holds = false;

  ~pl_train_job() override {
    control->request_stop();
    if (worker.joinable()) worker.join();
  }

  // Updates the state (and message) and reports it: the callback runs without the lock held, so it may call
  // back into the job.
  void report(std::optional<pl_job_state> new_state, const std::string& msg, double val_loss = kNaN) {
    pl_train_progress p{};
    std::string text;
    {
      std::lock_guard lock(mu);
      if (new_state) state = *new_state;
      message = msg;
      text = message;
      p.step = step;
      p.total_steps = total_steps;
      p.loss = loss;
      p.val_loss = val_loss;
      p.learning_rate = lr;
      p.tokens_per_s = tokens_per_s;
      p.state = state;
    }
    const std::optional<double> t = temperature_policy->temperature_c(sensors->read());
    p.temperature_c = t ? *t : kNaN;
    p.message = text.c_str();
    if (callback) callback(&p, user_data);
  }

  void run() {
    report(has_policy ? std::optional(PL_JOB_WAITING) : std::nullopt, has_policy ? "policy idle: not started" : "");
    try {
      const TrainSummary s = trainer->run(
          [&](const StepReport& r) {
            {
              std::lock_guard lock(mu);
              step = r.step;
              total_steps = r.total;
              loss = r.skipped ? kNaN : r.loss;
              lr = r.lr;
              tokens_per_s = r.tokens_per_s;
            }
            report(std::nullopt, r.policy_status, r.val_loss ? *r.val_loss : kNaN);
          },
          [&](const PolicyTransition& t) {
            std::optional<pl_job_state> st;
            if (t.to == "idle" || t.to == "cooldown-pause") st = PL_JOB_WAITING;
            else if (t.to == "training" || t.to == "cooldown-throttle") st = PL_JOB_RUNNING;
            if (st) {
              std::lock_guard lock(mu);
              policy_holds = *st == PL_JOB_WAITING;
            }
            report(st, fmt::format("policy {} -> {}: {}", t.from, t.to, t.reason));
          });
      std::lock_guard lock(mu);
      summary = s;
      state = s.steps_done == s.total_steps ? PL_JOB_FINISHED : PL_JOB_CANCELLED;
    } catch (const Error& e) {
      std::lock_guard lock(mu);
      state = PL_JOB_FAILED;
      error_status = static_cast<pl_status>(e.code());
      error_message = e.what();
    } catch (const std::bad_alloc&) {
      std::lock_guard lock(mu);
      state = PL_JOB_FAILED;
      error_status = PL_ERR_OUT_OF_MEMORY;
      error_message = "training job: host memory exhausted";
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      state = PL_JOB_FAILED;
      error_status = PL_ERR_INTERNAL;
      error_message = fmt::format("training job: {}", e.what());
    }
    std::string final_message;
    {
      std::lock_guard lock(mu);
      trainer.reset();  // the model, data and backend go now, not when the handle does
      final_message = error_message;
    }
    try {
      report(std::nullopt, final_message);
    } catch (...) {  // the callback is C: nothing to catch, but report() allocates
    }
    {
      std::lock_guard lock(mu);
      worker_done = true;
    }
    done_cv.notify_all();
  }
};

namespace {

std::shared_ptr<pl_train_job> job_arg(pl_train_job* job, const char* fn) {
  return get<pl_train_job>(job, fn, "pl_train_job");
}

void refuse_from_worker(pl_train_job& j, const char* fn) {
  std::lock_guard lock(j.mu);
  if (j.started && std::this_thread::get_id() == j.worker_id)
    throw ApiError(PL_ERR_BAD_STATE, fmt::format("{}: called from the job's own callback (it would wait for itself)", fn));
}

}  // namespace

extern "C" {

void pl_sensor_readings_init(pl_sensor_readings* r) {
  if (!r) return;
  r->battery_percent = kNaN;
  r->charging = PL_UNKNOWN;
  r->battery_temp_c = kNaN;
  r->screen_on = PL_UNKNOWN;
  r->user_override = PL_OVERRIDE_NONE;
  r->zones = nullptr;
  r->zone_count = 0;
}

pl_status pl_train_job_create(pl_model* model, const char* config_json, pl_train_callback callback, void* user_data,
                              pl_train_job** out) {
  return guarded("pl_train_job_create", [&] {
    auto m = get<pl_model>(model, "pl_train_job_create", "pl_model");
    require(config_json, "pl_train_job_create", "config_json");
    require(out, "pl_train_job_create", "out");
    *out = nullptr;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(config_json);
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(fmt::format("pl_train_job_create: the config is not JSON: {}", e.what()));
    }
    TrainJobConfig c = parse_train_job_config(j, "pl_train_job_create config");
    auto job = std::make_shared<pl_train_job>();
    job->callback = callback;
    job->user_data = user_data;
    TrainOptions& o = c.options;
    o.model = m->path;
    o.open_model = std::make_shared<const LlamaModel>(m->model);  // its readers: no second open of the file
    o.tokenizer = m->tokenizer_path;
    o.backend = m->kind;
    o.device = m->device;
    o.control = job->control;
    if (c.policy) o.policy = TrainPolicy{*c.policy, job->sensors, std::make_shared<ControlClock>(job->control)};
    pl_train_job* raw = job.get();  // the control is the job's own: it never outlives it
    job->control->on_pause_change = [raw](bool paused) {
      bool held = false;
      {
        std::lock_guard lock(raw->mu);
        held = raw->policy_holds;
      }
      raw->report(paused ? PL_JOB_PAUSED : held ? PL_JOB_WAITING : PL_JOB_RUNNING,
                  paused ? "paused: checkpoint written, device memory released" : "resumed from the pause's checkpoint");
    };
    job->has_policy = job->policy_holds = c.policy.has_value();
    job->temperature_policy.emplace(c.policy.value_or(PolicyConfig{}));
    job->trainer = std::make_unique<Trainer>(std::move(o));
    job->total_steps = job->trainer->total_steps();
    job->step = job->trainer->start_step();
    register_handle(job);
    *out = job.get();
  });
}

pl_status pl_train_job_start(pl_train_job* job) {
  return guarded("pl_train_job_start", [&] {
    auto j = job_arg(job, "pl_train_job_start");
    std::lock_guard lock(j->mu);
    if (j->state != PL_JOB_CREATED)
      throw ApiError(PL_ERR_BAD_STATE,
                     fmt::format("pl_train_job_start: the job is {}, not created", job_state_name(j->state)));
    j->state = PL_JOB_RUNNING;
    j->started = true;
    pl_train_job* raw = j.get();  // the handle outlives its worker: destroy and ~pl_train_job join it
    j->worker = std::thread([raw] { raw->run(); });
    j->worker_id = j->worker.get_id();
  });
}

pl_status pl_train_job_pause(pl_train_job* job) {
  return guarded("pl_train_job_pause", [&] {
    auto j = job_arg(job, "pl_train_job_pause");
    std::lock_guard lock(j->mu);
    if (ended(j->state))
      throw ApiError(PL_ERR_BAD_STATE, fmt::format("pl_train_job_pause: the job has {}", job_state_name(j->state)));
    j->control->request_pause();
  });
}

pl_status pl_train_job_resume(pl_train_job* job) {
  return guarded("pl_train_job_resume", [&] {
    auto j = job_arg(job, "pl_train_job_resume");
    std::lock_guard lock(j->mu);
    if (ended(j->state))
      throw ApiError(PL_ERR_BAD_STATE, fmt::format("pl_train_job_resume: the job has {}", job_state_name(j->state)));
    j->control->resume();
  });
}

pl_status pl_train_job_cancel(pl_train_job* job) {
  return guarded("pl_train_job_cancel", [&] {
    auto j = job_arg(job, "pl_train_job_cancel");
    std::lock_guard lock(j->mu);
    j->control->request_stop();
    if (j->state == PL_JOB_CREATED) {
      j->state = PL_JOB_CANCELLED;
      j->trainer.reset();
    }
  });
}

pl_status pl_train_job_wait(pl_train_job* job, pl_job_state* final_state) {
  return guarded("pl_train_job_wait", [&] {
    auto j = job_arg(job, "pl_train_job_wait");
    refuse_from_worker(*j, "pl_train_job_wait");
    std::unique_lock lock(j->mu);
    if (j->state == PL_JOB_CREATED)
      throw ApiError(PL_ERR_BAD_STATE, "pl_train_job_wait: the job was never started (pl_train_job_start)");
    if (j->started) j->done_cv.wait(lock, [&] { return j->worker_done; });
    if (final_state) *final_state = j->state;
    if (j->state == PL_JOB_FAILED) throw ApiError(j->error_status, j->error_message);
  });
}

pl_status pl_train_job_state(pl_train_job* job, pl_job_state* out) {
  return guarded("pl_train_job_state", [&] {
    auto j = job_arg(job, "pl_train_job_state");
    require(out, "pl_train_job_state", "out");
    std::lock_guard lock(j->mu);
    *out = j->state;
  });
}

pl_status pl_train_job_result(pl_train_job* job, char** json_out) {
  return guarded("pl_train_job_result", [&] {
    auto j = job_arg(job, "pl_train_job_result");
    require(json_out, "pl_train_job_result", "json_out");
    std::lock_guard lock(j->mu);
    if (!ended(j->state) || (j->started && !j->worker_done))
      throw ApiError(PL_ERR_BAD_STATE,
                     fmt::format("pl_train_job_result: the job is {}, not ended", job_state_name(j->state)));
    nlohmann::json r = {{"state", job_state_name(j->state)}, {"total_steps", j->total_steps}, {"steps", j->step},
                        {"error", j->error_message}};
    if (const auto& s = j->summary) {
      r["steps"] = s->steps_done;
      r["first_loss"] = optional_number(s->first_loss);
      r["last_loss"] = optional_number(s->last_loss);
      r["first_val_loss"] = optional_number(s->first_val_loss);
      r["last_val_loss"] = optional_number(s->last_val_loss);
      r["tokens_per_s"] = s->tokens_per_s;
      r["seconds"] = s->seconds;
      r["adapter_dir"] = s->adapter_dir.string();
      r["checkpoint"] = s->checkpoint.string();
    }
    *json_out = copy_string(r.dump());
  });
}

pl_status pl_train_job_push_sensors(pl_train_job* job, const pl_sensor_readings* readings) {
  return guarded("pl_train_job_push_sensors", [&] {
    auto j = job_arg(job, "pl_train_job_push_sensors");
    require(readings, "pl_train_job_push_sensors", "readings");
    j->sensors->push(to_readings(*readings));
  });
}

pl_status pl_train_job_destroy(pl_train_job* job) {
  return guarded("pl_train_job_destroy", [&] {
    auto j = job_arg(job, "pl_train_job_destroy");
    refuse_from_worker(*j, "pl_train_job_destroy");
    release<pl_train_job>(job, "pl_train_job_destroy", "pl_train_job");
    j->control->request_stop();
    if (j->worker.joinable()) j->worker.join();
  });
}

}  // extern "C"
