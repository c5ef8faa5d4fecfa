#include "tools/serve/http_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <exception>
#include <fstream>
#include <random>

#include "host/core/error.h"
#include "tools/serve/app_error.h"
#include "tools/serve/web_assets.h"

namespace pocketlora::serve {

using nlohmann::json;

std::string make_token() {
  std::random_device rd("/dev/urandom");
  std::string t;
  for (int i = 0; i < 4; ++i) t += fmt::format("{:08x}", static_cast<std::uint32_t>(rd()));
  return t;
}

namespace {

constexpr const char* kTokenHeader = "X-PocketLoRA-Token";
constexpr const char* kJson = "application/json";

// Status of the library's errors: what the request got wrong is 400, the rest is the server's (500).
int status_of(const Error& e) {
  switch (e.code()) {
    case ErrorCode::InvalidInput:
    case ErrorCode::Format:
    case ErrorCode::ShapeMismatch: return 400;
    default: return 500;
  }
}

std::string error_body(const std::string& code, const std::string& message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

void answer_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(error_body(code, message), kJson);
}

// The current exception as the contract's error answer; a 500 is also logged (the server keeps running).
void answer_exception(const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const AppError& e) {
    answer_error(res, e.status(), e.code(), e.what());
  } catch (const Error& e) {
    answer_error(res, status_of(e), error_code_name(e.code()), e.what());
  } catch (const json::exception& e) {
    answer_error(res, 400, error_code_name(ErrorCode::Format), fmt::format("request: {}", e.what()));
  } catch (const std::exception& e) {
    answer_error(res, 500, error_code_name(ErrorCode::Internal), e.what());
  } catch (...) {
    answer_error(res, 500, error_code_name(ErrorCode::Internal), "unknown exception");
  }
  if (res.status >= 500)
    std::fprintf(stderr, "pocketlora serve: %s %s: %s\n", req.method.c_str(), req.path.c_str(), res.body.c_str());
}

template <typename F>
void guarded(const httplib::Request& req, httplib::Response& res, F&& f) {
  try {
    f();
  } catch (...) {
    answer_exception(req, res, std::current_exception());
  }
}

void answer_json(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), kJson);
}

json body_json(const httplib::Request& req) {
  if (req.body.empty()) return json::object();
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw FormatError(fmt::format("request body is not JSON: {}", e.what()));
  }
}

std::int64_t job_id(const std::string& s) {
  try {
    std::size_t used = 0;
    const long long id = std::stoll(s, &used);
    if (used == s.size() && id > 0) return id;
  } catch (const std::logic_error&) {
  }
  throw not_found(fmt::format("job '{}' not found (job ids are positive integers)", s));
}

// Constant time in the token's length: the comparison leaks no prefix.
bool same_token(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

std::string sse(const std::string& event, const json& data) {
  return fmt::format("event: {}\ndata: {}\n\n", event, data.dump());
}

}  // namespace

struct HttpServer::Impl {
  AppService& app;
  HttpOptions opt;
  httplib::Server svr;

  Impl(AppService& a, HttpOptions o) : app(a), opt(std::move(o)) {
    // Event streams and generations each hold a worker for as long as they run.
    svr.new_task_queue = [] { return new httplib::ThreadPool(32); };
    svr.set_read_timeout(60);
    svr.set_write_timeout(60);
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      // An upload checks the token itself, so that it can read the body it refuses (upload()).
      if (!req.path.starts_with("/api/") || (req.method == "POST" && req.path == "/api/datasets"))
        return httplib::Server::HandlerResponse::Unhandled;
      try {
        check_token(req);
      } catch (...) {
        answer_exception(req, res, std::current_exception());
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.set_exception_handler(answer_exception);
    // httplib's own refusals (a malformed request, a missing route) get the same JSON shape.
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const bool missing = res.status == 404;
      answer_error(res, res.status, missing ? "not_found" : error_code_name(ErrorCode::InvalidInput),
                   missing ? fmt::format("no route {} {}", req.method, req.path) : fmt::format("HTTP {}", res.status));
    });
    routes();
  }

  void check_token(const httplib::Request& req) const {
    const std::string given =
        req.has_header(kTokenHeader) ? req.get_header_value(kTokenHeader) : req.get_param_value("token");
    if (same_token(given, opt.token)) return;
    throw AppError(401, "unauthorized",
                   given.empty() ? fmt::format("missing token: send header {} (the token is in the page's URL, "
                                               "printed when the server starts)", kTokenHeader)
                                 : "wrong token (a new one is made at every start of the server)");
  }

  void routes() {
    using Req = const httplib::Request&;
    using Res = httplib::Response&;
    auto get = [this](const std::string& pattern, std::function<json(Req)> f) {
      svr.Get(pattern, [f](Req req, Res res) { guarded(req, res, [&] { answer_json(res, f(req)); }); });
    };
    get("/api/status", [this](Req) { return app.status(); });
    get("/api/models", [this](Req) { return app.models(); });
    get("/api/datasets", [this](Req) { return app.datasets(); });
    get("/api/jobs", [this](Req) { return app.jobs(); });
    get("/api/adapters", [this](Req) { return app.adapters(); });
    get(R"(/api/jobs/([^/]+))", [this](Req req) { return app.job(job_id(req.matches[1])); });
    get(R"(/api/datasets/([^/]+)/stats)", [this](Req req) {
      std::map<std::string, std::string> q;
      for (const auto& [k, v] : req.params) q[k] = v;
      return app.dataset_stats(req.matches[1], q);
    });

    svr.Post("/api/datasets", [this](Req req, Res res, const httplib::ContentReader& reader) {
      guarded(req, res, [&] { upload(req, res, reader); });
    });
    svr.Delete(R"(/api/datasets/([^/]+))", [this](Req req, Res res) {
      guarded(req, res, [&] {
        app.delete_dataset(req.matches[1]);
        answer_json(res, {{"deleted", std::string(req.matches[1])}});
      });
    });
    svr.Post("/api/plan", [this](Req req, Res res) { guarded(req, res, [&] { answer_json(res, app.plan(body_json(req))); }); });
    svr.Post("/api/jobs", [this](Req req, Res res) {
      guarded(req, res, [&] { answer_json(res, app.add_job(body_json(req)), 201); });
    });
    svr.Post(R"(/api/jobs/([^/]+)/cancel)", [this](Req req, Res res) {
      guarded(req, res, [&] { answer_json(res, app.cancel_job(job_id(req.matches[1]))); });
    });
    svr.Post(R"(/api/adapters/([^/]+)/(enable|disable))", [this](Req req, Res res) {
      guarded(req, res, [&] {
        app.set_adapter_enabled(req.matches[1], req.matches[2] == "enable");
        answer_json(res, {{"name", std::string(req.matches[1])}, {"enabled", req.matches[2] == "enable"}});
      });
    });
    svr.Post(R"(/api/adapters/([^/]+)/rename)", [this](Req req, Res res) {
      guarded(req, res, [&] {
        const json b = body_json(req);
        if (!b.is_object() || !b.contains("to") || !b["to"].is_string())
          throw FormatError("rename: expected {\"to\": NEW_NAME}");
        app.rename_adapter(req.matches[1], b["to"].get<std::string>());
        answer_json(res, {{"name", b["to"]}});
      });
    });
    svr.Post(R"(/api/adapters/([^/]+)/export)", [this](Req req, Res res) {
      guarded(req, res, [&] { answer_json(res, app.export_adapter(req.matches[1], body_json(req))); });
    });
    svr.Delete(R"(/api/adapters/([^/]+))", [this](Req req, Res res) {
      guarded(req, res, [&] {
        app.delete_adapter(req.matches[1]);
        answer_json(res, {{"deleted", std::string(req.matches[1])}});
      });
    });
    svr.Get(R"(/api/exports/(.+))", [this](Req req, Res res) { guarded(req, res, [&] { download(req, res); }); });
    svr.Get("/api/events", [this](Req req, Res res) { guarded(req, res, [&] { events(res); }); });
    svr.Post("/api/generate", [this](Req req, Res res) { guarded(req, res, [&] { generate(req, res); }); });
    // Anything else under /api/ is a missing route; the rest is the page.
    svr.Get(".*", [](Req req, Res res) {
      if (req.path.starts_with("/api/")) return answer_error(res, 404, "not_found", "no route GET " + req.path);
      const WebAsset* a = find_web_asset(req.path);
      if (!a) return answer_error(res, 404, "not_found", "no page file " + req.path);
      res.set_header("Cache-Control", "no-cache");
      res.set_content(std::string(a->bytes), std::string(a->content_type).c_str());
    });
  }

  // The body streamed to the dataset library's temp file, piece by piece. A refusal (a bad or taken name, past the
  // limit: the partial file is gone at once) reads the rest of the body and drops it (up to a bound) before
  // answering: a client still sending when the server answers and closes sees a broken write, not the answer.
  void upload(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    std::exception_ptr failed;
    std::unique_ptr<DatasetUpload> up;
    try {
      check_token(req);
      if (req.is_multipart_form_data())
        throw InvalidArgument("dataset upload: send the file as the raw request body (application/octet-stream), "
                              "not as a multipart form");
      up = app.begin_dataset_upload(req.get_param_value("name"));
    } catch (...) {
      failed = std::current_exception();
    }
    std::uint64_t dropped = 0;
    const std::uint64_t drop_limit = 4 * app.config().max_upload_bytes + (1 << 20);
    const bool whole = reader([&](const char* data, std::size_t n) {
      if (failed) return (dropped += n) < drop_limit;
      try {
        up->write(data, n);
      } catch (...) {
        failed = std::current_exception();
        up.reset();
      }
      return true;
    });
    if (failed) std::rethrow_exception(failed);
    if (!whole) throw IoError("dataset upload: the request body ended early (the client went away?)");
    answer_json(res, up->finish(), 201);
  }

  void download(const httplib::Request& req, httplib::Response& res) {
    const std::filesystem::path file = app.export_file(req.matches[1]);
    const auto size = std::filesystem::file_size(file);
    auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
    if (!*in) throw IoError(fmt::format("cannot read '{}'", file.string()));
    res.set_header("Content-Disposition", fmt::format("attachment; filename=\"{}\"", file.filename().string()));
    res.set_content_provider(size, "application/octet-stream", [in](std::size_t offset, std::size_t length,
                                                                    httplib::DataSink& sink) {
      std::vector<char> buf(std::min<std::size_t>(length, 1 << 16));
      in->seekg(static_cast<std::streamoff>(offset));
      in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
      return in->gcount() > 0 && sink.write(buf.data(), static_cast<std::size_t>(in->gcount()));
    });
  }

  // Live events until the client goes away or the server stops; a comment line every heartbeat_s keeps it open.
  void events(httplib::Response& res) {
    auto sub = app.events().subscribe();
    res.set_header("Cache-Control", "no-cache");
    const auto heartbeat = std::chrono::seconds(opt.heartbeat_s);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, sub, heartbeat](std::size_t, httplib::DataSink& sink) {
          std::string first = ": connected\n\n";
          bool open = sink.write(first.data(), first.size());
          while (open) {
            const auto e = sub->next(heartbeat);
            if (!e && sub->closed()) break;
            const std::string text = e ? sse(e->name, e->data) : std::string(": heartbeat\n\n");
            open = sink.write(text.data(), text.size());
          }
          app.events().unsubscribe(sub);
          if (open) sink.done();
          return open;
        },
        [this, sub](bool) { app.events().unsubscribe(sub); });
  }

  // Tokens as server-sent events; a failed write (the client went away) cancels the generation.
  void generate(const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<ModelSession> session;
    const GenerateRequest r = app.parse_generate(body_json(req), session);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, r, session](std::size_t, httplib::DataSink& sink) {
      bool open = true;
      try {
        const GenerateOutcome o = app.generate(*session, r, [&](const std::string& text, std::int32_t id) {
          const std::string ev = sse("token", {{"text", text}, {"id", id}});
          return open = open && sink.write(ev.data(), ev.size());
        });
        if (open) {
          const std::string ev = sse("done", {{"tokens", o.tokens}, {"tokens_per_s", o.tokens_per_s}, {"stop", o.stop}});
          open = sink.write(ev.data(), ev.size());
        }
      } catch (const std::exception& e) {
        const Error* pe = dynamic_cast<const Error*>(&e);
        const std::string ev =
            sse("error", {{"code", pe ? error_code_name(pe->code()) : "internal"}, {"message", e.what()}});
        open = open && sink.write(ev.data(), ev.size());
      }
      if (open) sink.done();
      return open;
    });
  }
};

HttpServer::HttpServer(AppService& app, HttpOptions options)
    : impl_(std::make_unique<Impl>(app, std::move(options))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::bind() {
  auto& o = impl_->opt;
  if (o.port == 0) {
    port_ = impl_->svr.bind_to_any_port(o.host);
    if (port_ < 0) port_ = 0;
  } else if (impl_->svr.bind_to_port(o.host, o.port)) {
    port_ = o.port;
  }
  if (port_ <= 0) throw IoError(fmt::format("serve: cannot listen on {}:{} (in use, or not an address here)", o.host, o.port));
}

void HttpServer::serve() { impl_->svr.listen_after_bind(); }

void HttpServer::stop() {
  impl_->app.events().close();
  impl_->svr.stop();
}

}  // namespace pocketlora::serve
