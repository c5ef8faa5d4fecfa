// The app's API (`pocketlora serve`, docs/APP.md) over real HTTP on 127.0.0.1: the token check on every route, the
// page, status and models, dataset upload (limits, malformed files, conflicts) with `data stats`'s numbers, the
// planner, and the error answers of missing models, datasets, jobs and adapters. Training and generation are in
// test_app_training.cpp.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/data/dataset_stats.h"
#include "host/jobs/job_queue.h"
#include "host/model/llama_model.h"
#include "host/tokenizer/tokenizer.h"
#include "host/util/read_file.h"
#include "serve/app_fixture.h"
#include "tools/serve/web_assets.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::AppServer;
using test::mentions;

// Every route of the API, with a body where it takes one.
struct Route {
  std::string method, path;
};
const std::vector<Route> kRoutes = {
    {"GET", "/api/status"},          {"GET", "/api/models"},
    {"GET", "/api/datasets"},        {"POST", "/api/datasets?name=d.txt"},
    {"GET", "/api/datasets/d.txt/stats?model=stories260K"},
    {"DELETE", "/api/datasets/d.txt"}, {"POST", "/api/plan"},
    {"GET", "/api/jobs"},            {"POST", "/api/jobs"},
    {"GET", "/api/jobs/1"},          {"POST", "/api/jobs/1/cancel"},
    {"GET", "/api/adapters"},        {"POST", "/api/adapters/a/enable"},
    {"POST", "/api/adapters/a/disable"}, {"POST", "/api/adapters/a/rename"},
    {"POST", "/api/adapters/a/export"}, {"DELETE", "/api/adapters/a"},
    {"GET", "/api/exports/a/adapter_model.safetensors"}, {"GET", "/api/events"},
    {"POST", "/api/generate"}};

httplib::Result send(httplib::Client& c, const Route& r, const std::string& body = "hello\n") {
  if (r.method == "GET") return c.Get(r.path);
  if (r.method == "DELETE") return c.Delete(r.path);
  return c.Post(r.path, body, "application/octet-stream");
}

TEST(AppApi, EveryApiRouteNeedsTheTokenThePageDoesNot) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  AppServer s(test::app_config(tmp));
  auto anonymous = s.make_client(false);
  auto wrong = s.make_client(false);
  wrong->set_default_headers({{"X-PocketLoRA-Token", "ffffffffffffffffffffffffffffffff"}});
  for (const auto& r : kRoutes) {
    for (auto* c : {anonymous.get(), wrong.get()}) {
      const auto res = send(*c, r);
      ASSERT_TRUE(res) << r.method << " " << r.path;
      EXPECT_EQ(res->status, 401) << r.method << " " << r.path << ": " << res->body;
      EXPECT_EQ(json::parse(res->body)["error"]["code"], "unauthorized") << res->body;
    }
  }
  // Nothing was done: the upload without the token left no dataset.
  EXPECT_TRUE(s.get("/api/datasets").empty());
  // ?token= is accepted where a header cannot be set (EventSource, downloads).
  EXPECT_EQ(anonymous->Get(std::string("/api/status?token=") + AppServer::kToken)->status, 200);
  // The page and its files need no token, and are the embedded bytes.
  for (const auto& a : serve::web_assets()) {
    const auto res = anonymous->Get(std::string(a.path));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << a.path;
    EXPECT_EQ(res->body, a.bytes) << a.path;
    EXPECT_EQ(res->get_header_value("Content-Type"), a.content_type) << a.path;
  }
  EXPECT_EQ(anonymous->Get("/")->body, serve::find_web_asset("/index.html")->bytes);
  EXPECT_EQ(anonymous->Get("/no-such-page.html")->status, 404);
  s.get("/api/no-such-route", 404);
}

TEST(AppApi, TokensAreRandomHexPerStart) {
  const std::string a = serve::make_token(), b = serve::make_token();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
}

TEST(AppApi, StatusAndModelsDescribeTheServerAndTheModel) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  AppServer s(test::app_config(tmp));
  const json st = s.get("/api/status");
  EXPECT_EQ(st["version"], POCKETLORA_VERSION);
  EXPECT_EQ(st["backend"], "cpu");
  EXPECT_TRUE(st["policy"].is_null());  // no --policy
  EXPECT_TRUE(st["running_job"].is_null());
  EXPECT_TRUE(st["runner_error"].is_null()) << st.dump();

  // A file in DATA/models/ that is no model (a tokenizer) is not offered.
  fs::copy_file(test::data_path("models/stories260K/tok512.bin"), tmp / "data/models/tok512.bin");
  const json models = s.get("/api/models");
  ASSERT_EQ(models.size(), 1u) << models.dump();
  const LlamaConfig c = load_llama_model(bin, BaseQuant::None, BaseLoad::Deferred).config;
  const json& m = models[0];
  EXPECT_EQ(m["name"], "stories260K");
  EXPECT_EQ(m["path"], bin.string());
  EXPECT_EQ(m["format"], "llama2c");
  EXPECT_EQ(m["size_bytes"], fs::file_size(bin));
  EXPECT_EQ(m["config"]["dim"], c.dim);
  EXPECT_EQ(m["config"]["n_layers"], c.n_layers);
  EXPECT_EQ(m["config"]["n_kv_heads"], c.n_kv_heads);
  EXPECT_EQ(m["config"]["max_seq_len"], c.max_seq_len);
  EXPECT_EQ(m["targets"], json({"q", "k", "v", "o", "gate", "up", "down"}));
}

TEST(AppApi, AQueueThatAnotherRunnerHoldsIsReportedAndTheServerStaysUp) {
  POCKETLORA_REQUIRE_DATA(txt, "datasets/tinystories_sample.txt");
  test::TempDir tmp;
  const FileLock other = JobQueue(tmp / "data/queue").lock_runner();  // as `pocketlora schedule run` would
  AppServer s(test::app_config(tmp));
  json st;
  for (int i = 0; i < 200 && (st = s.get("/api/status"))["runner_error"].is_null(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(mentions(st["runner_error"].get<std::string>(), {"runner", std::to_string(::getpid())})) << st.dump();
  s.upload("stories.txt", read_file_text(txt));
  EXPECT_EQ(s.post("/api/jobs", {{"model", "stories260K"}, {"dataset", "stories.txt"}, {"adapter_name", "q"},
                                 {"steps", 1}, {"batch", 1}, {"seq_len", 32}}, 201)["state"], "queued");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(s.get("/api/jobs/1")["state"], "queued");  // queued, shown, not run
}

TEST(AppApi, AServiceClosedAtOnceStopsItsRunner) {
  // The destructor's single stop can come before the runner thread has reached JobRunner::run(): it must still
  // end it, every time.
  test::TempDir tmp;
  serve::AppConfig cfg;
  cfg.data_dir = tmp / "data";
  for (int i = 0; i < 10; ++i) serve::AppService app(cfg);
  // And one that had time to start: its queue's runner lock is free again afterwards.
  {
    serve::AppService app(cfg);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NO_THROW(JobQueue(tmp / "data/queue").lock_runner());
}

TEST(AppApi, DatasetUploadStatsAndDelete) {
  POCKETLORA_REQUIRE_DATA(alpaca, "datasets/alpaca_en_demo.json");
  test::TempDir tmp;
  AppServer s(test::app_config(tmp));
  const std::string bytes = read_file_text(alpaca);
  const auto records = read_records(alpaca);
  const json e = s.upload("alpaca_en_demo.json", bytes);
  EXPECT_EQ(e["name"], "alpaca_en_demo.json");
  EXPECT_EQ(e["size_bytes"], bytes.size());
  EXPECT_EQ(e["format"], "alpaca");
  EXPECT_EQ(e["records"], records.size());
  EXPECT_EQ(read_file_text(tmp / "data/datasets/alpaca_en_demo.json"), bytes);
  EXPECT_EQ(s.get("/api/datasets"), json::array({e}));
  EXPECT_TRUE(mentions(s.upload("alpaca_en_demo.json", bytes, 409)["error"]["message"], {"alpaca_en_demo.json", "exists"}));

  // The numbers of `pocketlora data stats` (the same function), plus a preview.
  const json st = s.get("/api/datasets/alpaca_en_demo.json/stats?model=stories260K&seq_len=64");
  const auto tok = load_tokenizer(test::data_path("models/stories260K/tok512.bin"));
  json want = dataset_stats(records, *tok, detect_chat_template(*tok), 64, false);
  for (const auto& [k, v] : want.items()) EXPECT_EQ(st[k], v) << k;
  ASSERT_EQ(st["preview"].size(), 3u);
  EXPECT_TRUE(st["preview"][0]["prompt"].get<std::string>().starts_with(records[0].alpaca_instruction));
  std::string response = st["preview"][0]["response"];  // cut at 400 bytes, marked with an ellipsis
  if (response.ends_with("…")) response.resize(response.size() - std::string("…").size());
  EXPECT_LE(response.size(), 400u);
  EXPECT_TRUE(records[0].alpaca_output.starts_with(response)) << response;
  EXPECT_EQ(s.get("/api/datasets/alpaca_en_demo.json/stats?model=stories260K&pack=1&seq_len=64")["packed_windows"],
            dataset_stats(records, *tok, detect_chat_template(*tok), 64, true)["packed_windows"]);

  s.get("/api/datasets/alpaca_en_demo.json/stats", 400);  // the model's tokenizer counts the tokens
  s.get("/api/datasets/alpaca_en_demo.json/stats?model=stories260K&seq_len=x", 400);
  EXPECT_EQ(s.get("/api/datasets/alpaca_en_demo.json/stats?model=nope", 404)["error"]["code"], "not_found");
  EXPECT_EQ(s.get("/api/datasets/nope.json/stats?model=stories260K", 404)["error"]["code"], "not_found");
  s.del("/api/datasets/alpaca_en_demo.json");
  EXPECT_TRUE(s.get("/api/datasets").empty());
  EXPECT_FALSE(fs::exists(tmp / "data/datasets/alpaca_en_demo.json"));
  s.del("/api/datasets/alpaca_en_demo.json", 404);
}

TEST(AppApi, BadUploadsAreRefusedAndLeaveNoFile) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  serve::AppConfig cfg = test::app_config(tmp);
  cfg.max_upload_bytes = 100000;
  AppServer s(cfg);
  const fs::path incoming = tmp / "data/datasets/.incoming";
  auto nothing_left = [&] {
    EXPECT_TRUE(s.get("/api/datasets").empty());
    EXPECT_TRUE(fs::is_empty(incoming)) << "a partial upload was left in " << incoming;
    EXPECT_EQ(std::distance(fs::directory_iterator(tmp / "data/datasets"), fs::directory_iterator()), 1);
  };
  // Past the limit: 413, and the partial file is gone.
  const json big = s.upload("big.txt", std::string(300000, 'a'), 413);
  EXPECT_EQ(big["error"]["code"], "too_large");
  EXPECT_TRUE(mentions(big["error"]["message"], {"big.txt", "100000"}));
  nothing_left();
  // Malformed JSON names the problem; a binary file is not text; a JSON file of no known shape.
  EXPECT_EQ(s.upload("bad.json", "[{\"instruction\": \"x\", ", 400)["error"]["code"], "format");
  nothing_left();
  EXPECT_TRUE(mentions(s.upload("blob.bin", std::string("ab\0cd", 5), 400)["error"]["message"], {"binary"}));
  nothing_left();
  EXPECT_TRUE(mentions(s.upload("latin1.txt", "caf\xe9\n", 400)["error"]["message"], {"UTF-8"}));
  nothing_left();
  s.upload("bad.jsonl", "{\"foo\": 1}\n", 400);
  nothing_left();
  // Names that are no single safe file name, or none.
  EXPECT_TRUE(mentions(s.upload("..%2Fescape.txt", "hello\n", 400)["error"]["message"], {"dataset name"}));
  s.upload("", "hello\n", 400);
  nothing_left();
  // The server is still there, and a good upload works.
  EXPECT_EQ(s.upload("ok.txt", "Once upon a time.\n")["format"], "text");
}

TEST(AppApi, PlanAndJobRequestsAreCheckedLikeTheTrainer) {
  POCKETLORA_REQUIRE_DATA(txt, "datasets/tinystories_sample.txt");
  test::TempDir tmp;
  AppServer s(test::app_config(tmp));
  s.upload("stories.txt", read_file_text(txt));
  const json job = {{"model", "stories260K"}, {"dataset", "stories.txt"}, {"adapter_name", "a1"}, {"steps", 3},
                    {"batch", 2},            {"seq_len", 32},         {"rank", 4},           {"targets", {"q", "v"}}};
  const json plan = s.post("/api/plan", job);
  EXPECT_EQ(plan["ok"], true);
  EXPECT_EQ(plan["total_steps"], 3);
  EXPECT_GT(plan["memory"]["planned_peak_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GE(plan["memory"]["planned_peak_bytes"], plan["memory"]["resident_bytes"]);
  EXPECT_EQ(plan["memory"]["micro_batch"], 2);
  EXPECT_TRUE(s.get("/api/jobs").empty());  // planning queues nothing

  auto with = [&](const char* k, json v) {
    json j = job;
    j[k] = std::move(v);
    return j;
  };
  EXPECT_TRUE(mentions(s.post("/api/plan", with("rank", 0), 400)["error"]["message"], {"rank"}));
  EXPECT_TRUE(mentions(s.post("/api/plan", with("seq_len", 4096), 400)["error"]["message"], {"4096"}));
  EXPECT_TRUE(mentions(s.post("/api/plan", with("targets", {"q", "nope"}), 400)["error"]["message"], {"nope"}));
  EXPECT_TRUE(mentions(s.post("/api/plan", with("learning_rate", 1), 400)["error"]["message"], {"learning_rate"}));
  EXPECT_TRUE(mentions(s.post("/api/plan", with("max_memory", "1K"), 400)["error"]["message"], {"1024"}));
  EXPECT_TRUE(mentions(s.post("/api/plan", with("adapter_name", "../x"), 400)["error"]["message"], {"adapter name"}));
  EXPECT_EQ(s.post("/api/plan", with("model", "nope"), 404)["error"]["code"], "not_found");
  EXPECT_EQ(s.post("/api/plan", with("dataset", "nope.txt"), 404)["error"]["code"], "not_found");
  EXPECT_EQ(s.post("/api/jobs", with("dataset", "nope.txt"), 404)["error"]["code"], "not_found");
  s.post("/api/jobs", with("rank", -1), 400);
  const auto raw = s.client->Post("/api/plan", "{not json", "application/json");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 400);
  EXPECT_TRUE(s.get("/api/jobs").empty());

  s.get("/api/jobs/7", 404);
  s.get("/api/jobs/abc", 404);
  s.post("/api/jobs/7/cancel", json::object(), 404);
  // Missing adapters.
  EXPECT_EQ(s.post("/api/adapters/nope/enable", json::object(), 404)["error"]["code"], "not_found");
  s.post("/api/adapters/nope/disable", json::object(), 404);
  s.post("/api/adapters/nope/rename", {{"to", "x"}}, 404);
  s.post("/api/adapters/nope/export", {{"format", "peft"}}, 404);
  s.del("/api/adapters/nope", 404);
  s.get("/api/exports/nope/adapter_model.safetensors", 404);
  s.get("/api/exports/..%2F..%2Fetc/passwd", 404);
  EXPECT_EQ(s.post("/api/generate", {{"model", "nope"}, {"prompt", "x"}}, 404)["error"]["code"], "not_found");
  s.post("/api/generate", {{"model", "stories260K"}, {"adapter", "nope"}, {"prompt", "x"}}, 404);
  s.post("/api/generate", {{"model", "stories260K"}, {"prompt", "x"}, {"temperature", -1}}, 400);
  s.post("/api/generate", {{"model", "stories260K"}, {"prompt", "x"}, {"max_tokens", 0}}, 400);
  s.post("/api/generate", {{"model", "stories260K"}, {"prompt", "x"}, {"nope", 0}}, 400);
}

}  // namespace
}  // namespace pocketlora
