#pragma once
// A real `pocketlora serve` in the test process: AppService over a temporary data directory (stories260K
// registered as the model), its HttpServer on 127.0.0.1 port 0 in a thread, and an httplib client that sends the
// token. SSE bodies are split into (event, data) pairs.
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "tools/serve/app_service.h"
#include "tools/serve/http_server.h"

namespace pocketlora::test {

struct SseEvent {
  std::string name;
  nlohmann::json data;
};

// The events of a text/event-stream body; comment lines (heartbeats) are skipped.
inline std::vector<SseEvent> parse_sse(const std::string& body) {
  std::vector<SseEvent> out;
  std::size_t at = 0;
  while (at < body.size()) {
    const std::size_t end = body.find("\n\n", at);
    const std::string block = body.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? body.size() : end + 2;
    SseEvent e;
    std::size_t line_at = 0;
    while (line_at < block.size()) {
      const std::size_t nl = block.find('\n', line_at);
      const std::string line = block.substr(line_at, nl == std::string::npos ? std::string::npos : nl - line_at);
      line_at = nl == std::string::npos ? block.size() : nl + 1;
      if (line.starts_with("event: ")) e.name = line.substr(7);
      if (line.starts_with("data: ")) e.data = nlohmann::json::parse(line.substr(6));
    }
    if (!e.name.empty()) out.push_back(std::move(e));
  }
  return out;
}

class AppServer {
 public:
  static constexpr const char* kToken = "0123456789abcdef0123456789abcdef";

  explicit AppServer(serve::AppConfig cfg) {
    app = std::make_unique<serve::AppService>(std::move(cfg));
    serve::HttpOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.token = kToken;
    o.heartbeat_s = 1;
    server = std::make_unique<serve::HttpServer>(*app, o);
    server->bind();
    thread = std::thread([this] { server->serve(); });
    client = make_client(true);
  }
  ~AppServer() {
    server->stop();
    if (thread.joinable()) thread.join();
    server.reset();
    app.reset();
  }

  std::unique_ptr<httplib::Client> make_client(bool with_token) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    c->set_read_timeout(120);
    c->set_write_timeout(30);
    if (with_token) c->set_default_headers({{"X-PocketLoRA-Token", kToken}});
    return c;
  }

  // The answer's JSON, the status checked: a wrong one fails the test there (printing the body) rather than let it
  // go on reading fields the answer does not have.
  nlohmann::json get(const std::string& path, int status = 200) { return check(client->Get(path), status, path); }
  nlohmann::json post(const std::string& path, const nlohmann::json& body, int status = 200) {
    return check(client->Post(path, body.dump(), "application/json"), status, path);
  }
  nlohmann::json del(const std::string& path, int status = 200) { return check(client->Delete(path), status, path); }
  nlohmann::json upload(const std::string& name, const std::string& bytes, int status = 201) {
    return check(client->Post("/api/datasets?name=" + name, bytes, "application/octet-stream"), status, name);
  }

  static nlohmann::json check(const httplib::Result& r, int status, const std::string& what) {
    if (!r) throw std::runtime_error(what + ": no answer (" + httplib::to_string(r.error()) + ")");
    if (r->status != status)
      throw std::runtime_error(what + ": HTTP " + std::to_string(r->status) + ", expected " + std::to_string(status) +
                               ": " + r->body);
    if (r->status >= 400) {  // every error has the contract's shape
      const auto j = nlohmann::json::parse(r->body);
      EXPECT_TRUE(j["error"]["code"].is_string()) << r->body;
      EXPECT_TRUE(j["error"]["message"].is_string()) << r->body;
      return j;
    }
    return r->body.empty() ? nlohmann::json() : nlohmann::json::parse(r->body);
  }

  std::unique_ptr<serve::AppService> app;
  std::unique_ptr<serve::HttpServer> server;
  std::thread thread;
  std::unique_ptr<httplib::Client> client;
};

// A data directory in `tmp` with stories260K registered (its tokenizer is found beside it).
inline serve::AppConfig app_config(const TempDir& tmp) {
  serve::AppConfig c;
  c.data_dir = tmp / "data";
  c.models = {data_path("models/stories260K/stories260K.bin")};
  c.backend = BackendKind::Cpu;
  c.runner_poll_s = 0.05;
  return c;
}

}  // namespace pocketlora::test
