#include "tools/serve/app_service.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "host/core/error.h"
#include "host/data/dataset_stats.h"
#include "host/model/llama_model.h"
#include "host/policy/device_policy.h"
#include "host/train/adapter_base.h"
#include "host/train/adapter_origin.h"
#include "host/train/metrics_log.h"
#include "host/train/train_job_config.h"
#include "host/util/entry_name.h"
#include "host/util/json_field.h"
#include "host/util/stop_request.h"
#include "tools/serve/app_error.h"

namespace pocketlora::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The fields of a job request that are the app's, not the trainer's (parse_train_job_config takes the rest).
constexpr const char* kOrigin = "job options";

json nullable(const std::optional<double>& v) { return v && std::isfinite(*v) ? json(*v) : json(); }

json policy_json(const std::optional<PolicyTransition>& t, const PolicyConfig& config) {
  if (!t) return {{"state", "idle"}, {"reason", "no job has run under the policy yet"}, {"temperature_c", nullptr},
                  {"battery_pct", nullptr}, {"charging", nullptr}};
  const SensorReadings& r = t->readings;
  return {{"state", t->to},
          {"reason", t->reason},
          {"temperature_c", nullable(DevicePolicy(config).temperature_c(r))},
          {"battery_pct", nullable(r.battery_percent)},
          {"charging", r.charging ? json(*r.charging) : json()}};
}

// "?pack=1" style flags.
bool query_flag(const std::map<std::string, std::string>& q, const std::string& key) {
  auto it = q.find(key);
  return it != q.end() && (it->second == "1" || it->second == "true");
}

}  // namespace

fs::path default_data_dir() {
  if (const char* home = std::getenv("POCKETLORA_HOME"); home && *home) return home;
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".pocketlora";
  throw InvalidArgument("no data directory: set POCKETLORA_HOME or HOME, or pass --data-dir");
}

AppService::AppService(AppConfig config)
    : cfg_((config.data_dir = fs::absolute(config.data_dir), std::move(config))),
      catalog_(cfg_.data_dir / "models", cfg_.models, cfg_.backend),
      datasets_(cfg_.data_dir / "datasets", cfg_.max_upload_bytes),
      queue_(cfg_.data_dir / "queue"),
      runs_dir_(cfg_.data_dir / "runs"),
      exports_dir_(cfg_.data_dir / "exports"),
      store_(cfg_.data_dir / "adapters") {
  for (const auto& d : {cfg_.data_dir / "models", datasets_.dir(), queue_.dir(), runs_dir_, exports_dir_, store_.root()}) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) throw IoError(fmt::format("cannot create '{}': {}", d.string(), ec.message()));
  }
  JobRunnerOptions ro;
  ro.policy = cfg_.policy;
  ro.idle_poll_s = cfg_.runner_poll_s;
  ro.progress_every_s = 1.0;
  JobRunnerCallbacks cb;
  cb.on_state = [this](const JobRecord& r) {
    try {
      {
        std::lock_guard lock(state_mu_);
        if (r.state == JobState::Running) {
          running_job_ = r.id;
          job_started_ = std::chrono::steady_clock::now();
          job_first_step_ = -1;
        } else if (running_job_ == r.id) {
          running_job_.reset();
        }
      }
      events_.publish("job", job_json(r));
      if (r.state == JobState::Done) add_finished_adapter(r);
      if (r.state == JobState::Failed && r.last_error)
        log("error", fmt::format("job {} failed: [{}] {}", r.id, r.last_error->code, r.last_error->message));
    } catch (const std::exception& e) {  // a callback must never end the runner
      log("error", fmt::format("job {}: {}", r.id, e.what()));
    }
  };
  cb.on_step = [this](const JobRecord& r, const StepReport& s) {
    double eta = 0;
    {
      std::lock_guard lock(state_mu_);
      const auto now = std::chrono::steady_clock::now();
      if (job_first_step_ < 0) {  // the first step of this attempt: the clock starts after it (model load excluded)
        job_first_step_ = s.step;
        job_started_ = now;
      } else if (s.step > job_first_step_) {
        const double per_step = std::chrono::duration<double>(now - job_started_).count() /
                                static_cast<double>(s.step - job_first_step_);
        eta = per_step * static_cast<double>(s.total - s.step);
      }
    }
    json j = {{"job", r.id},
              {"step", s.step},
              {"total", s.total},
              {"loss", s.skipped || !std::isfinite(s.loss) ? json() : json(s.loss)},
              {"lr", s.lr},
              {"tokens_per_s", s.tokens_per_s},
              {"eta_s", eta},
              {"memory_bytes", s.memory_bytes},
              {"policy_status", s.policy_status}};
    if (s.val_loss) j["val_loss"] = nullable(s.val_loss);
    events_.publish("step", std::move(j));
  };
  cb.on_policy = [this](const JobRecord&, const PolicyTransition& t) {
    {
      std::lock_guard lock(state_mu_);
      last_policy_ = t;
    }
    events_.publish("policy", policy_json(t, cfg_.policy ? cfg_.policy->config : PolicyConfig{}));
  };
  cb.on_problem = [this](const JobProblem& p) {
    log("warning", fmt::format("job queue: skipped {}: {}", p.path.string(), p.message));
  };
  runner_ = std::make_unique<JobRunner>(queue_, std::move(ro), std::move(cb));
  runner_thread_ = std::thread([this] { run_jobs(); });
}

AppService::~AppService() {
  {
    std::lock_guard lock(state_mu_);
    on_runner_exit_ = nullptr;
  }
  runner_->request_stop();  // taken even if the thread has not reached run() yet
  if (runner_thread_.joinable()) runner_thread_.join();
  clear_stop_request();
  events_.close();
}

void AppService::on_runner_exit(std::function<void()> f) {
  std::lock_guard lock(state_mu_);
  on_runner_exit_ = std::move(f);
}

// The runner ends on a stop request (Ctrl-C / SIGTERM, or the destructor): the server goes with it. Any other end
// (another runner holds the queue, the policy's sensors ended) leaves the server up, saying why jobs do not run.
void AppService::run_jobs() {
  std::string why;
  bool interrupted = false;
  try {
    const JobRunnerSummary s = runner_->run();
    interrupted = s.interrupted;
    if (!s.policy_stop.empty()) why = "the device policy's sensors ended: " + s.policy_stop;
  } catch (const std::exception& e) {
    why = e.what();
  }
  const std::string error = "the job runner stopped (jobs are queued, not run, until a restart): " + why;
  std::function<void()> f;
  {
    std::lock_guard lock(state_mu_);
    if (!interrupted) runner_error_ = error;
    f = on_runner_exit_;
  }
  if (!interrupted) log("error", error);
  if (interrupted && f) f();
}

void AppService::log(const std::string& level, const std::string& message) {
  events_.publish("log", {{"level", level}, {"message", message}});
  if (level != "info") std::fprintf(stderr, "pocketlora serve: %s: %s\n", level.c_str(), message.c_str());
}

json AppService::status() {
  std::lock_guard lock(state_mu_);
  json j = {{"version", POCKETLORA_VERSION},
            {"backend", backend_kind_name(cfg_.backend)},
            {"data_dir", cfg_.data_dir.string()},
            {"devices", json::array({backend_kind_name(cfg_.backend)})},
            {"policy", cfg_.policy ? policy_json(last_policy_, cfg_.policy->config) : json()},
            {"running_job", running_job_ ? json(*running_job_) : json()},
            {"runner_error", runner_error_.empty() ? json() : json(runner_error_)},
            {"max_upload_bytes", cfg_.max_upload_bytes}};
  return j;
}

json AppService::models() {
  json out = json::array();
  for (const auto& m : catalog_.list()) out.push_back(model_entry_json(m));
  return out;
}

// ---- datasets ---------------------------------------------------------------------------------------------------

json AppService::datasets() { return datasets_.list(); }

std::unique_ptr<DatasetUpload> AppService::begin_dataset_upload(const std::string& name) {
  return datasets_.begin_upload(name);
}

json AppService::dataset_stats(const std::string& name, const std::map<std::string, std::string>& query) {
  const fs::path file = datasets_.path(name);
  auto get = [&](const std::string& k) -> std::optional<std::string> {
    auto it = query.find(k);
    return it == query.end() || it->second.empty() ? std::nullopt : std::optional(it->second);
  };
  const auto model = get("model");
  if (!model) throw InvalidArgument("dataset stats: parameter 'model' is required (its tokenizer counts the tokens)");
  const ModelEntry m = catalog_.find(*model);
  const auto tok = load_tokenizer(m.tokenizer);
  const ChatTemplate tmpl = get("template") ? parse_chat_template(*get("template")) : detect_chat_template(*tok);
  std::int64_t seq_len = 256;
  if (auto v = get("seq_len")) {
    try {
      std::size_t used = 0;
      seq_len = std::stoll(*v, &used);
      if (used != v->size()) throw std::invalid_argument(*v);
    } catch (const std::logic_error&) {
      throw InvalidArgument(fmt::format("dataset stats: parameter 'seq_len': expected an integer, got '{}'", *v));
    }
    if (seq_len < 2) throw InvalidArgument(fmt::format("dataset stats: parameter 'seq_len': {} < 2", seq_len));
  }
  const auto records = read_records(file, parse_data_format(get("format").value_or("auto")));
  json out = {{"name", name}, {"model", m.name}};
  out.update(pocketlora::dataset_stats(records, *tok, tmpl, seq_len, query_flag(query, "pack")));
  out["preview"] = DatasetLibrary::preview(records, 3);
  return out;
}

void AppService::delete_dataset(const std::string& name) { datasets_.remove(name); }

// ---- jobs -------------------------------------------------------------------------------------------------------

// The job request as TrainOptions: the trainer's fields through parse_train_job_config (the C API's config, the same
// names, defaults and checks), the app's own (model, dataset, adapter_name, backend, targets as a list) here.
TrainOptions AppService::train_options(const json& options, std::string* adapter_name) {
  if (!options.is_object()) throw FormatError(fmt::format("{}: expected a JSON object, found {}", kOrigin, options.type_name()));
  namespace jf = json_field;
  json config = options;
  for (const char* k : {"model", "dataset", "adapter_name", "backend", "targets"}) config.erase(k);
  const ModelEntry m = catalog_.find(jf::string(options, "model", kOrigin));
  const fs::path data = datasets_.path(jf::string(options, "dataset", kOrigin));
  const std::string name = jf::string(options, "adapter_name", kOrigin);
  validate_adapter_name(name);
  if (auto it = options.find("targets"); it != options.end() && !it->is_null()) {
    if (it->is_string()) {
      config["targets"] = *it;
    } else if (it->is_array()) {
      std::string joined;
      for (const auto& t : *it) {
        if (!t.is_string()) throw FormatError(fmt::format("{}: field 'targets': expected names, found {}", kOrigin, t.type_name()));
        joined += (joined.empty() ? "" : ",") + t.get<std::string>();
      }
      config["targets"] = joined;
    } else {
      throw FormatError(fmt::format("{}: field 'targets': expected a list of names, found {}", kOrigin, it->type_name()));
    }
  }
  config["data"] = data.string();
  config["out"] = (runs_dir_ / name).string();
  TrainJobConfig c = parse_train_job_config(config, kOrigin);
  if (c.policy) throw InvalidArgument(fmt::format("{}: field 'policy': the server's runner applies its own (serve --policy)", kOrigin));
  TrainOptions o = std::move(c.options);
  o.model = m.path;
  o.tokenizer = m.tokenizer;
  o.backend = cfg_.backend;
  if (auto b = jf::opt_string(options, "backend", kOrigin)) o.backend = resolve_backend_kind(*b);
  if (adapter_name) *adapter_name = name;
  return o;
}

json AppService::plan(const json& options) {
  const TrainOptions o = train_options(options, nullptr);
  try {
    Trainer t(o, make_backend(BackendKind::Cpu));
    const MemoryReport& p = t.plan_memory();
    return {{"ok", true},
            {"memory",
             {{"planned_peak_bytes", p.planned_peak_bytes},
              {"resident_bytes", p.resident_bytes},
              {"step_arena_bytes", p.step_arena_bytes},
              {"micro_batch", p.micro_batch},
              {"grad_accum", p.grad_accum},
              {"checkpointing", p.checkpointing},
              {"limit_bytes", p.limit_bytes},
              {"limit_source", p.limit_source}}},
            {"total_steps", t.total_steps()},
            {"train_windows", t.data().stats().train_windows}};
  } catch (const OutOfMemoryError& e) {  // the plan does not fit max_memory: the request's fault, not the server's
    throw AppError(400, error_code_name(e.code()), e.what());
  }
}

std::optional<std::string> AppService::job_adapter(const JobRecord& r) const {
  if (r.run_dir.parent_path() != runs_dir_) return std::nullopt;
  return r.run_dir.filename().string();
}

json AppService::job_json(const JobRecord& r) const {
  json j = job_record_json(r);
  const auto a = job_adapter(r);
  j["adapter"] = a ? json(*a) : json();
  return j;
}

json AppService::jobs() {
  json out = json::array();
  for (const auto& r : queue_.list().jobs) out.push_back(job_json(r));
  return out;
}

json AppService::add_job(const json& options) {
  std::string name;
  TrainOptions o = train_options(options, &name);
  {
    std::lock_guard lock(store_mu_);
    std::error_code ec;
    if (fs::exists(store_.root() / name, ec))
      throw conflict(fmt::format("adapter '{}' already exists in the store: choose another adapter_name", name));
  }
  for (const auto& r : queue_.list().jobs)
    if (r.run_dir == o.out)
      throw conflict(fmt::format("adapter_name '{}' is already the job of {} ({}): choose another name", name, r.id,
                                 job_state_name(r.state)));
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_empty(o.out, ec))
    throw conflict(fmt::format("adapter_name '{}': its run directory {} is in use", name, o.out.string()));
  try {
    const JobRecord r = queue_.add(std::move(o));
    json j = job_json(r);
    events_.publish("job", j);
    log("info", fmt::format("job {} queued: adapter '{}'", r.id, name));
    return j;
  } catch (const OutOfMemoryError& e) {
    throw AppError(400, error_code_name(e.code()), e.what());
  }
}

json AppService::job(std::int64_t id) {
  const JobListing l = queue_.list();
  for (const auto& r : l.jobs) {
    if (r.id != id) continue;
    json j = job_json(r);
    json metrics = json::array();
    const fs::path log_path = r.run_dir / "metrics.jsonl";
    std::error_code ec;
    if (fs::exists(log_path, ec))
      for (const StepMetrics& m : read_metrics_log(log_path)) {
        json s = {{"step", m.step},
                  {"loss", std::isfinite(m.loss) ? json(m.loss) : json()},
                  {"lr", m.lr},
                  {"tokens_per_s", m.tokens_per_s}};
        if (m.val_loss) s["val_loss"] = nullable(m.val_loss);
        metrics.push_back(std::move(s));
      }
    j["metrics"] = std::move(metrics);
    return j;
  }
  throw not_found(fmt::format("job {} not found in {}", id, queue_.dir().string()));
}

json AppService::cancel_job(std::int64_t id) {
  job(id);  // not_found first
  const JobRecord r = queue_.cancel(id);
  json j = job_json(r);
  events_.publish("job", j);
  return j;
}

void AppService::add_finished_adapter(const JobRecord& r) {
  const auto name = job_adapter(r);
  if (!name) return;
  const AdapterOrigin origin = read_adapter_origin(r.run_dir);
  // Only the configuration and the q/k row layout are needed: f32 skips quantizing a model that is not kept.
  const LlamaModel model = load_llama_model(r.train.model, BaseQuant::None);
  const AdapterBase base = adapter_base(model, r.train.model, origin.base_quant.empty() ? "nf4" : origin.base_quant);
  {
    std::lock_guard lock(store_mu_);
    store_.add(r.run_dir, *name, base, origin);
  }
  events_.publish("adapters", {{"added", *name}});
  log("info", fmt::format("job {} done: adapter '{}' added to the store", r.id, *name));
}

// ---- adapters ---------------------------------------------------------------------------------------------------

AdapterManifest AppService::existing_adapter(const std::string& name) const {
  validate_adapter_name(name);
  std::error_code ec;
  if (!fs::is_directory(store_.root() / name, ec))
    throw not_found(fmt::format("adapter '{}' not found in {}", name, store_.root().string()));
  return store_.show(name);
}

json AppService::adapters() {
  const AdapterListing l = store_.list();
  json out = json::array();
  for (const auto& m : l.adapters) out.push_back(adapter_manifest_json(m));
  for (const auto& p : l.problems)
    out.push_back({{"name", p.path.filename().string()}, {"problems", json::array({p.message})}});
  return out;
}

void AppService::set_adapter_enabled(const std::string& name, bool enabled) {
  std::lock_guard lock(store_mu_);
  existing_adapter(name);
  store_.set_enabled(name, enabled);
  events_.publish("adapters", {{enabled ? "enabled" : "disabled", name}});
}

void AppService::rename_adapter(const std::string& from, const std::string& to) {
  std::lock_guard lock(store_mu_);
  existing_adapter(from);
  validate_adapter_name(to);
  std::error_code ec;
  if (fs::exists(store_.root() / to, ec)) throw conflict(fmt::format("adapter '{}' already exists", to));
  store_.rename(from, to);
  events_.publish("adapters", {{"renamed", from}, {"to", to}});
}

void AppService::delete_adapter(const std::string& name) {
  std::lock_guard lock(store_mu_);
  existing_adapter(name);
  store_.remove(name);
  std::error_code ec;
  fs::remove_all(exports_dir_ / name, ec);  // its downloads go with it
  events_.publish("adapters", {{"deleted", name}});
}

json AppService::export_adapter(const std::string& name, const json& request) {
  const std::string origin = "export request";
  if (!request.is_object()) throw FormatError(origin + ": expected a JSON object");
  const std::string format = json_field::opt_string(request, "format", origin).value_or("peft");
  const std::string dtype = json_field::opt_string(request, "dtype", origin).value_or("f32");
  if (dtype != "f32" && dtype != "f16")
    throw InvalidArgument(fmt::format("{}: field 'dtype': expected f32 or f16, got '{}'", origin, dtype));
  std::lock_guard lock(store_mu_);
  const AdapterManifest m = existing_adapter(name);
  const fs::path dir = exports_dir_ / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
  std::vector<fs::path> files;
  if (format == "peft") {
    store_.export_peft(name, dir);
    for (const auto& f : m.files) files.push_back(dir / f.name);
  } else if (format == "gguf") {
    // GGUF orders q/k rows by the base's head layout: the base the adapter says it was trained on.
    const auto base_path = store_.recorded_base_path(name);
    if (!base_path)
      throw InvalidArgument(fmt::format("adapter '{}': its base model '{}' is not a file here; GGUF export needs it",
                                        name, m.base_model));
    const LlamaModel model = load_llama_model(*base_path, BaseQuant::None);
    const fs::path out = dir / (name + ".gguf");
    store_.export_gguf(name, adapter_base(model, *base_path, m.base_quant), out, dtype == "f16" ? DType::F16 : DType::F32);
    files.push_back(out);
  } else {
    throw InvalidArgument(fmt::format("{}: field 'format': expected peft or gguf, got '{}'", origin, format));
  }
  json out = json::array();
  for (const auto& f : files)
    out.push_back({{"name", f.filename().string()},
                   {"size_bytes", fs::file_size(f)},
                   {"url", "/api/exports/" + name + "/" + f.filename().string()}});
  return {{"files", out}};
}

fs::path AppService::export_file(const std::string& relative) {
  const auto slash = relative.find('/');
  if (slash == std::string::npos) throw not_found(fmt::format("export '{}' not found", relative));
  const std::string adapter = relative.substr(0, slash), file = relative.substr(slash + 1);
  try {
    validate_entry_name("export", adapter);
    validate_entry_name("export file", file);
  } catch (const InvalidArgument& e) {
    throw not_found(fmt::format("export '{}' not found ({})", relative, e.what()));
  }
  const fs::path p = exports_dir_ / adapter / file;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) throw not_found(fmt::format("export '{}' not found", relative));
  return p;
}

// ---- generation -------------------------------------------------------------------------------------------------

GenerateRequest AppService::parse_generate(const json& request, std::shared_ptr<ModelSession>& session) {
  namespace jf = json_field;
  const std::string origin = "generate request";
  if (!request.is_object()) throw FormatError(origin + ": expected a JSON object");
  static const std::set<std::string> known = {"model", "adapter", "scale", "prompt", "max_tokens", "temperature",
                                              "top_k", "top_p", "seed", "chat"};
  for (const auto& [k, v] : request.items())
    if (!known.contains(k)) throw InvalidArgument(fmt::format("{}: unknown field '{}'", origin, k));
  GenerateRequest r;
  r.prompt = jf::string(request, "prompt", origin);
  if (auto v = jf::opt_string(request, "adapter", origin)) {
    if (!existing_adapter(*v).enabled)
      throw InvalidArgument(fmt::format("adapter '{}' is disabled: enable it to generate with it", *v));
    r.adapter = *v;
  }
  if (auto v = jf::opt_number(request, "scale", origin)) r.scale = static_cast<float>(*v);
  if (!std::isfinite(r.scale)) throw InvalidArgument(origin + ": field 'scale': not finite");
  if (auto v = jf::opt_int(request, "max_tokens", origin)) r.max_tokens = *v;
  if (auto v = jf::opt_number(request, "temperature", origin)) r.sampling.temperature = static_cast<float>(*v);
  if (auto v = jf::opt_int(request, "top_k", origin)) r.sampling.top_k = *v;
  if (auto v = jf::opt_number(request, "top_p", origin)) r.sampling.top_p = static_cast<float>(*v);
  if (auto v = jf::opt_int(request, "seed", origin)) {
    if (*v < 0) throw InvalidArgument(origin + ": field 'seed': expected a non-negative integer");
    r.sampling.seed = static_cast<std::uint64_t>(*v);
  }
  if (auto v = jf::opt_bool(request, "chat", origin)) r.chat = *v;
  r.sampling.validate();
  if (r.max_tokens < 1) throw InvalidArgument(fmt::format("{}: field 'max_tokens': expected at least 1", origin));
  session = catalog_.session(jf::string(request, "model", origin));
  return r;
}

GenerateOutcome AppService::generate(ModelSession& session, const GenerateRequest& r,
                                     const std::function<bool(const std::string&, std::int32_t)>& on_piece) {
  const GenerateOutcome o = session.generate(r, store_, on_piece);
  if (o.stop == "cancelled")
    log("info", fmt::format("generation cancelled after {} tokens: the client went away", o.tokens));
  return o;
}

}  // namespace pocketlora::serve
