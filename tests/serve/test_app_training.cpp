// The app's whole loop over HTTP on the CPU backend: a dataset uploaded, a short stories260K job queued through the
// API and run by the server's job runner (a second job queued behind it, then cancelled), live events and the
// metrics history, the finished adapter in the store, generation with and without it (the same tokens as the
// library's generate), export and download, enable/disable/rename/delete; and clients that go away mid-stream.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/eval/peft_lora_adapter.h"
#include "host/infer/generate.h"
#include "host/model/llama_forward.h"
#include "host/model/llama_model.h"
#include "host/policy/scripted_timeline.h"
#include "host/tokenizer/tokenizer.h"
#include "host/util/read_file.h"
#include "serve/app_fixture.h"
#include "tools/serve/event_hub.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::AppServer;
using test::mentions;
using test::parse_sse;

// The generated token ids and the final event of one /api/generate stream.
struct Generated {
  std::vector<std::int32_t> ids;
  std::string text;
  json done;
};

Generated generate(AppServer& s, const json& request) {
  const auto res = s.client->Post("/api/generate", request.dump(), "application/json");
  Generated g;
  if (!res) {
    ADD_FAILURE() << "no answer";
    return g;
  }
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  for (const auto& e : parse_sse(res->body)) {
    if (e.name == "token") {
      g.ids.push_back(e.data["id"].get<std::int32_t>());
      g.text += e.data["text"].get<std::string>();
    } else if (e.name == "done") {
      g.done = e.data;
    } else {
      ADD_FAILURE() << "unexpected event " << e.name << ": " << e.data.dump();
    }
  }
  return g;
}

// The library's own greedy generation, without the server: the ids of the tokens before the stop token.
std::vector<std::int32_t> direct_generate(const fs::path& model_path, const std::string& prompt, std::int64_t n,
                                          const fs::path& adapter_dir = {}) {
  const LlamaModel model = load_llama_model(model_path, BaseQuant::None);
  const auto tok = load_tokenizer(find_tokenizer(model_path));
  auto be = make_backend(BackendKind::Cpu);
  Decoder d(*be, upload_llama(*be, model));
  GenerateOptions opt;
  opt.max_tokens = n;
  opt.stop = {*tok->eos_id()};
  if (!adapter_dir.empty()) opt.adapters.push_back({d.add_adapter(load_peft_lora_adapter(adapter_dir, model), "a"), 1.0f});
  GenerateResult r = pocketlora::generate(d, tok->encode(prompt, true), opt);
  if (r.stopped) r.tokens.pop_back();
  return r.tokens;
}

// Collects /api/events in a thread until stopped.
class EventRecorder {
 public:
  explicit EventRecorder(AppServer& s) : client_(s.make_client(false)) {
    thread_ = std::thread([this] {
      client_->Get(std::string("/api/events?token=") + AppServer::kToken, [this](const char* data, std::size_t n) {
        std::lock_guard lock(mu_);
        body_.append(data, n);
        return !stop_;
      });
    });
  }
  ~EventRecorder() { finish(); }
  std::vector<test::SseEvent> finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    return parse_sse(body_);
  }

 private:
  std::unique_ptr<httplib::Client> client_;
  std::mutex mu_;
  std::string body_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

json wait_for_job(AppServer& s, std::int64_t id, const std::string& state) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  json j;
  while (std::chrono::steady_clock::now() < until) {
    j = s.get("/api/jobs/" + std::to_string(id));
    if (j["state"] == state) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "job " << id << " never became " << state << ": " << j.dump();
  return j;
}

TEST(AppTraining, UploadTrainGenerateExportAndManageAnAdapter) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(txt, "datasets/tinystories_sample.txt");
  test::TempDir tmp;
  AppServer s(test::app_config(tmp));
  EventRecorder events(s);
  for (int i = 0; i < 200 && s.app->events().subscribers() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(s.app->events().subscribers(), 1u);
  s.upload("stories.txt", read_file_text(txt));
  const json job = {{"model", "stories260K"}, {"dataset", "stories.txt"}, {"adapter_name", "story"},
                    {"steps", 4},             {"batch", 2},             {"seq_len", 32},
                    {"lr", 3e-2},             {"eval_every", 4},        {"seed", 7}};
  const json added = s.post("/api/jobs", job, 201);
  EXPECT_EQ(added["id"], 1);
  EXPECT_EQ(added["state"], "queued");
  EXPECT_EQ(added["adapter"], "story");
  // The same adapter name again: refused while its job exists.
  EXPECT_EQ(s.post("/api/jobs", job, 409)["error"]["code"], "conflict");
  // A second job while the first runs is queued and shown so; cancelled before it runs.
  json second = job;
  second["adapter_name"] = "later";
  second["steps"] = 200;
  const json queued = s.post("/api/jobs", second, 201);
  EXPECT_EQ(queued["state"], "queued");
  // Cancelled before it runs (or, should the first job already be done, stopped after its current step).
  const json cancelled = s.post("/api/jobs/2/cancel", json::object());
  EXPECT_TRUE(cancelled["state"] == "cancelled" || cancelled["cancel_requested"] == true) << cancelled.dump();

  const json done = wait_for_job(s, 1, "done");
  EXPECT_EQ(done["steps_done"], 4);
  ASSERT_EQ(done["metrics"].size(), 4u) << done.dump();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(done["metrics"][i]["step"], i + 1);
    EXPECT_TRUE(done["metrics"][i]["loss"].is_number());
  }
  EXPECT_EQ(s.get("/api/jobs").size(), 2u);
  wait_for_job(s, 2, "cancelled");

  // The finished adapter is in the store (the runner adds it after the job's final transition).
  json adapters;
  for (int i = 0; i < 200 && adapters.empty(); ++i) {
    adapters = s.get("/api/adapters");
    if (adapters.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(adapters.size(), 1u);
  EXPECT_EQ(adapters[0]["name"], "story");
  EXPECT_EQ(adapters[0]["enabled"], true);
  EXPECT_EQ(adapters[0]["training"]["steps"], 4);
  EXPECT_EQ(adapters[0]["lora"]["r"], 8);

  // Generation with and without it: the library's tokens, streamed.
  const json req = {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"max_tokens", 12}};
  const Generated base = generate(s, req);
  EXPECT_EQ(base.ids, direct_generate(bin, "Once upon a time", 12));
  EXPECT_EQ(base.done["tokens"].get<std::size_t>(), base.ids.size() + (base.done["stop"] == "eos" ? 1 : 0));
  json with = req;
  with["adapter"] = "story";
  const Generated tuned = generate(s, with);
  EXPECT_EQ(tuned.ids, direct_generate(bin, "Once upon a time", 12, tmp / "data/adapters/story"));
  EXPECT_NE(tuned.ids, base.ids);  // lr 3e-2 for 4 steps moves greedy decoding
  EXPECT_EQ(generate(s, req).ids, base.ids);  // hot-swapped back to the base, no reload

  // Export as PEFT and GGUF; the download is the file.
  const json peft = s.post("/api/adapters/story/export", {{"format", "peft"}});
  ASSERT_EQ(peft["files"].size(), 2u) << peft.dump();
  for (const auto& f : peft["files"]) {
    const auto res = s.client->Get(f["url"].get<std::string>());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, read_file_text(tmp / "data/adapters/story" / f["name"].get<std::string>()));
    EXPECT_EQ(res->body.size(), f["size_bytes"].get<std::size_t>());
  }
  const json gguf = s.post("/api/adapters/story/export", {{"format", "gguf"}, {"dtype", "f16"}});
  ASSERT_EQ(gguf["files"].size(), 1u);
  EXPECT_EQ(gguf["files"][0]["name"], "story.gguf");
  s.post("/api/adapters/story/export", {{"format", "onnx"}}, 400);

  // Disable: generation with it is refused before streaming; enable again.
  s.post("/api/adapters/story/disable", json::object());
  EXPECT_EQ(s.get("/api/adapters")[0]["enabled"], false);
  EXPECT_TRUE(mentions(s.post("/api/generate", with, 400)["error"]["message"], {"disabled"}));
  s.post("/api/adapters/story/enable", json::object());
  // Rename (a taken name is a conflict), delete.
  s.post("/api/adapters/story/rename", {{"to", "tale"}});
  EXPECT_EQ(s.get("/api/adapters")[0]["name"], "tale");
  with["adapter"] = "tale";
  EXPECT_EQ(generate(s, with).ids, tuned.ids);
  s.post("/api/adapters/story/rename", {{"to", "x"}}, 404);
  s.del("/api/adapters/tale");
  EXPECT_TRUE(s.get("/api/adapters").empty());
  s.del("/api/adapters/tale", 404);

  // What the page saw live: the job's transitions, its steps, the store's changes.
  const auto seen = events.finish();
  int steps = 0, done_events = 0, adapter_events = 0;
  for (const auto& e : seen) {
    steps += e.name == "step" && e.data["job"] == 1;
    done_events += e.name == "job" && e.data["id"] == 1 && e.data["state"] == "done";
    adapter_events += e.name == "adapters";
  }
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(done_events, 1);
  EXPECT_GE(adapter_events, 4);  // added, disabled, enabled, renamed, deleted
}

TEST(AppTraining, ClientsThatGoAwayMidStreamDoNotHurtTheServer) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  AppServer s(test::app_config(tmp));
  EventRecorder events(s);
  for (int i = 0; i < 200 && s.app->events().subscribers() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // A generation whose client leaves after the first token: cancelled, and the model is free for the next one.
  httplib::Request req;
  req.method = "POST";
  req.path = "/api/generate";
  req.set_header("X-PocketLoRA-Token", AppServer::kToken);
  req.set_header("Content-Type", "application/json");
  req.body = json{{"model", "stories260K"}, {"prompt", "Once"}, {"max_tokens", 400}}.dump();
  int chunks = 0;
  req.content_receiver = [&](const char*, std::size_t, std::uint64_t, std::uint64_t) { return ++chunks < 2; };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  s.client->send(req, res, err);
  EXPECT_EQ(chunks, 2);
  // An event stream whose client leaves.
  auto c = s.make_client(true);
  int event_chunks = 0;
  c->Get("/api/events", [&](const char*, std::size_t) { return ++event_chunks < 1; });
  EXPECT_EQ(event_chunks, 1);
  // The server answers, and the next generation runs to its end.
  EXPECT_EQ(s.get("/api/status")["version"], POCKETLORA_VERSION);
  const Generated g = generate(s, {{"model", "stories260K"}, {"prompt", "Once"}, {"max_tokens", 5}});
  EXPECT_FALSE(g.done.is_null());
  EXPECT_EQ(g.ids, direct_generate(bin, "Once", 5));
  // The generation stopped when its client left (not after its 400 tokens).
  bool cancelled = false;
  for (const auto& e : events.finish())
    cancelled |= e.name == "log" && e.data["message"].get<std::string>().starts_with("generation cancelled");
  EXPECT_TRUE(cancelled);
  // The event streams' subscriptions went with their clients.
  for (int i = 0; i < 100 && s.app->events().subscribers() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(s.app->events().subscribers(), 0u);
}

TEST(AppTraining, JobsRunUnderTheDevicePolicyAndItsStateIsShown) {
  POCKETLORA_REQUIRE_DATA(txt, "datasets/tinystories_sample.txt");
  test::TempDir tmp;
  serve::AppConfig cfg = test::app_config(tmp);
  // Simulated time: unplugged at first, plugged in at t=300 s (`serve --sensors scripted:...`).
  auto timeline = std::make_shared<ScriptedTimeline>(
      json{{"events",
            {{{"t", 0}, {"charging", false}, {"battery_percent", 90}, {"battery_temp_c", 30}},
             {{"t", 300}, {"charging", true}},
             {{"t", 100000}, {"charging", true}}}}},
      "inline timeline");
  cfg.policy = TrainPolicy{PolicyConfig{}, timeline, timeline};
  AppServer s(cfg);
  const json before = s.get("/api/status")["policy"];
  EXPECT_EQ(before["state"], "idle");
  EventRecorder events(s);
  for (int i = 0; i < 200 && s.app->events().subscribers() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  s.upload("stories.txt", read_file_text(txt));
  s.post("/api/jobs", {{"model", "stories260K"}, {"dataset", "stories.txt"}, {"adapter_name", "night"},
                       {"steps", 2}, {"batch", 2}, {"seq_len", 32}}, 201);
  wait_for_job(s, 1, "done");
  std::vector<std::string> states;
  for (const auto& e : events.finish())
    if (e.name == "policy") states.push_back(e.data["state"]);
  EXPECT_EQ(states, (std::vector<std::string>{"training", "done"}));
  const json after = s.get("/api/status")["policy"];
  EXPECT_EQ(after["state"], "done");
  EXPECT_EQ(after["battery_pct"], 90);
  EXPECT_EQ(after["charging"], true);
  EXPECT_TRUE(after["reason"].is_string());
}

TEST(EventHub, DeliversToEverySubscriberDropsTheOldestWhenFullAndWakesOnClose) {
  serve::EventHub hub;
  auto a = hub.subscribe(), b = hub.subscribe();
  hub.publish("log", {{"message", "one"}});
  EXPECT_EQ(a->next(std::chrono::milliseconds(0))->data["message"], "one");
  EXPECT_EQ(b->next(std::chrono::milliseconds(0))->name, "log");
  EXPECT_FALSE(a->next(std::chrono::milliseconds(1)));
  for (std::size_t i = 0; i < serve::EventHub::kMaxQueued + 5; ++i) hub.publish("step", {{"step", i}});
  EXPECT_EQ(a->next(std::chrono::milliseconds(0))->data["step"], 5);  // the 5 oldest were dropped
  hub.unsubscribe(b);
  EXPECT_EQ(hub.subscribers(), 1u);
  std::thread waiter([&] {
    while (a->next(std::chrono::seconds(30))) {
    }
  });
  hub.close();
  waiter.join();  // woken by close(), not the 30 s timeout
  EXPECT_TRUE(a->closed());
}

}  // namespace
}  // namespace pocketlora
