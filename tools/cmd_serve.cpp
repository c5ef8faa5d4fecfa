// `pocketlora serve [--host 127.0.0.1] [--port 8080] [--data-dir DIR] [--model PATH]... [--max-upload SIZE]
// [--backend auto|cpu|vulkan] [--policy FILE] [--sensors SPEC]`: the app (docs/APP.md): the page and its JSON API
// on one port, training jobs run by the server's job runner under the device policy. Prints the page's URL with
// this start's token; Ctrl-C checkpoints a running job and stops.
#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <memory>

#include "host/core/error.h"
#include "host/util/byte_size.h"
#include "tools/command_registry.h"
#include "tools/serve/app_service.h"
#include "tools/serve/http_server.h"
#include "tools/train_options.h"

namespace pocketlora::cli {
namespace {

struct ServeArgs {
  std::string host = "127.0.0.1", data_dir, max_upload = "64M", backend = "auto", policy, sensors;
  int port = 8080;
  std::vector<std::string> models;
};

int run_serve(const ServeArgs& a) {
  serve::AppConfig cfg;
  cfg.data_dir = a.data_dir.empty() ? serve::default_data_dir() : std::filesystem::path(a.data_dir);
  for (const auto& m : a.models) cfg.models.emplace_back(m);
  cfg.max_upload_bytes = parse_byte_size(a.max_upload, "--max-upload");
  cfg.backend = resolve_backend_kind(a.backend);
  cfg.policy = parse_train_policy(a.policy, a.sensors);
  // A client that goes away mid-answer is a failed write to handle, not a signal that ends the server.
  std::signal(SIGPIPE, SIG_IGN);
  serve::AppService app(std::move(cfg));
  serve::HttpOptions ho;
  ho.host = a.host;
  ho.port = a.port;
  ho.token = serve::make_token();
  serve::HttpServer server(app, ho);
  server.bind();
  // Ctrl-C / SIGTERM end the job runner (which holds the handlers while it runs): the server goes with it.
  app.on_runner_exit([&server] { server.stop(); });
  const std::string shown_host = a.host == "0.0.0.0" || a.host == "::" ? "localhost" : a.host;
  fmt::print("PocketLoRA app: http://{}:{}/?token={}\n", shown_host, server.port(), ho.token);
  fmt::print("data directory {}; Ctrl-C stops (a running job is checkpointed and resumes at the next start)\n",
             app.config().data_dir.string());
  std::fflush(stdout);
  server.serve();
  return 0;
}

CommandRegistration register_cmd_serve("serve", "The app: a web page and JSON API to upload data, train, test and manage adapters",
                        [](CLI::App& sub) -> Action {
                          auto a = std::make_shared<ServeArgs>();
                          sub.add_option("--host", a->host, "address to listen on (localhost only by default)")
                              ->capture_default_str();
                          sub.add_option("--port", a->port, "port (0: any free one)")->capture_default_str();
                          sub.add_option("--data-dir", a->data_dir,
                                         "models/, datasets/, queue/, adapters/, exports/ (default: $POCKETLORA_HOME, "
                                         "else ~/.pocketlora)");
                          sub.add_option("--model", a->models, "offer this model too (repeatable)");
                          sub.add_option("--max-upload", a->max_upload, "largest dataset upload")->capture_default_str();
                          sub.add_option("--backend", a->backend, "generation and jobs: auto, cpu or vulkan")
                              ->capture_default_str();
                          add_policy_options(sub, a->policy, a->sensors);
                          return [a] { return run_serve(*a); };
                        });

}  // namespace
}  // namespace pocketlora::cli
