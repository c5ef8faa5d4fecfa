#pragma once
// The app's HTTP binding (cpp-httplib, the only file that includes it): the JSON routes over AppService, the
// token check, streamed uploads and downloads, server-sent events for live events and generated tokens, and the
// embedded page. docs/APP.md is the reference of every route.
//
// Auth: every /api/ request needs the per-start token (header X-PocketLoRA-Token, or ?token= for EventSource and
// downloads, which cannot set headers); the page's static files need none. Every request runs guarded: any
// exception becomes a JSON error answer, never the end of the server.
#include <memory>
#include <string>

#include "tools/serve/app_service.h"

namespace pocketlora::serve {

// 32 hex characters from the OS's CSPRNG (/dev/urandom through std::random_device).
std::string make_token();

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (port() tells which)
  std::string token;
  int heartbeat_s = 15;  // SSE comment lines that keep idle event streams (and proxies) alive
};

class HttpServer {
 public:
  HttpServer(AppService& app, HttpOptions options);
  ~HttpServer();
  // Binds (IoError naming host:port when it cannot); port() is known after this.
  void bind();
  int port() const { return port_; }
  // Serves until stop(); returns then.
  void serve();
  // From any thread: ends open event streams and serve().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace pocketlora::serve
