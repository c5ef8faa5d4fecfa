#pragma once
// The app's service (`pocketlora serve`, docs/APP.md): every API operation as a call that takes and returns JSON,
// independent of HTTP (tools/serve/http_server.h binds it to routes) so it is tested without sockets too. A thin
// layer over the library: the job queue and its runner (host/jobs), the adapter store (host/adapters), the data
// pipeline (host/data), generation (host/infer). Thread-safe: the HTTP server calls it from its thread pool.
//
//   DATA/models/    models offered (plus --model PATH)      DATA/queue/     the job queue (`pocketlora schedule`)
//   DATA/datasets/  uploaded datasets                         DATA/runs/NAME  the run directory of the app's job
//   DATA/adapters/  the adapter store (`pocketlora adapters`)                 that trains adapter NAME
//   DATA/exports/   exported adapters offered for download
//
// Errors: the library's (host/core/error.h) and AppError (not_found, conflict, too_large).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/adapters/adapter_store.h"
#include "host/jobs/job_queue.h"
#include "host/jobs/job_runner.h"
#include "host/train/trainer.h"
#include "tools/serve/dataset_library.h"
#include "tools/serve/event_hub.h"
#include "tools/serve/model_catalog.h"
#include "tools/serve/model_session.h"

namespace pocketlora::serve {

struct AppConfig {
  std::filesystem::path data_dir;
  std::vector<std::filesystem::path> models;  // --model, registered beside DATA/models/
  std::uint64_t max_upload_bytes = 64ull << 20;
  BackendKind backend = BackendKind::Cpu;  // generation's backend, and jobs' default
  std::optional<TrainPolicy> policy;       // the runner trains under it (--policy / --sensors)
  double runner_poll_s = 0.5;              // how often an idle runner looks for new jobs
};

// $POCKETLORA_HOME, else $HOME/.pocketlora.
std::filesystem::path default_data_dir();

class AppService {
 public:
  // Creates the data directory's folders and starts the job runner thread (it holds the queue's runner lock: a
  // `pocketlora schedule run` on the same queue is refused, and reported by status()).
  explicit AppService(AppConfig config);
  // Stops the runner: a running job is checkpointed and goes back to queued (it resumes at the next start).
  ~AppService();
  AppService(const AppService&) = delete;
  AppService& operator=(const AppService&) = delete;

  EventHub& events() { return events_; }
  const AppConfig& config() const { return cfg_; }
  // Called once when the runner ends on its own (Ctrl-C / SIGTERM reach it: the server should stop too).
  void on_runner_exit(std::function<void()> f);

  nlohmann::json status();
  nlohmann::json models();

  nlohmann::json datasets();
  std::unique_ptr<DatasetUpload> begin_dataset_upload(const std::string& name);
  // `query`: model (required), format, template, seq_len, pack ("1"/"true").
  nlohmann::json dataset_stats(const std::string& name, const std::map<std::string, std::string>& query);
  void delete_dataset(const std::string& name);

  nlohmann::json plan(const nlohmann::json& options);
  nlohmann::json jobs();
  nlohmann::json add_job(const nlohmann::json& options);
  nlohmann::json job(std::int64_t id);  // + "metrics"
  nlohmann::json cancel_job(std::int64_t id);

  nlohmann::json adapters();
  void set_adapter_enabled(const std::string& name, bool enabled);
  void rename_adapter(const std::string& from, const std::string& to);
  void delete_adapter(const std::string& name);
  // {"format": "peft"|"gguf", "dtype"?: "f32"|"f16"} -> {"files": [{"name", "size_bytes", "url"}]}
  nlohmann::json export_adapter(const std::string& name, const nlohmann::json& request);
  // An exported file by its path under DATA/exports/ ("NAME/adapter_model.safetensors"); not_found otherwise.
  std::filesystem::path export_file(const std::string& relative);

  // {"model", "adapter"?, "scale"?, "prompt", "max_tokens"?, "temperature"?, "top_k"?, "top_p"?, "seed"?, "chat"?}
  GenerateRequest parse_generate(const nlohmann::json& request, std::shared_ptr<ModelSession>& session);
  GenerateOutcome generate(ModelSession& session, const GenerateRequest& r,
                           const std::function<bool(const std::string& text, std::int32_t id)>& on_piece);

 private:
  TrainOptions train_options(const nlohmann::json& options, std::string* adapter_name);
  nlohmann::json job_json(const JobRecord& r) const;
  std::optional<std::string> job_adapter(const JobRecord& r) const;
  void add_finished_adapter(const JobRecord& r);
  void log(const std::string& level, const std::string& message);
  void run_jobs();
  AdapterManifest existing_adapter(const std::string& name) const;

  AppConfig cfg_;
  EventHub events_;
  ModelCatalog catalog_;
  DatasetLibrary datasets_;
  JobQueue queue_;
  std::filesystem::path runs_dir_, exports_dir_;
  std::mutex store_mu_;  // the adapter store's writers in this process (the store flocks across processes)
  AdapterStore store_;

  std::mutex state_mu_;  // below
  std::optional<PolicyTransition> last_policy_;
  std::optional<std::int64_t> running_job_;
  std::string runner_error_;
  std::function<void()> on_runner_exit_;
  std::chrono::steady_clock::time_point job_started_;
  std::int64_t job_first_step_ = 0;

  std::unique_ptr<JobRunner> runner_;
  std::thread runner_thread_;  // last: started once everything it uses exists
};

}  // namespace pocketlora::serve
