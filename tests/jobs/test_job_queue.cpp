// The job queue's files (host/jobs/job_queue.h, train_options_json.h): a job's options round-trip exactly, entries
// are read back as written, a bad job is refused at add before anything is written, garbled entries are reported
// by path and skipped (never a crash, never an id handed out twice), cancel and claim follow the states, and
// concurrent `schedule add` processes each get their own id.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/error_message.h"
#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/jobs/job_queue.h"
#include "host/jobs/train_options_json.h"
#include "jobs/job_fixtures.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::error_of;
using test::mentions;
using test::tiny_job;

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

TEST(TrainOptionsJson, EveryFieldRoundTripsExactly) {
  TrainOptions o;  // every field off its default, floats that are not short decimals
  o.model = "/m/model.gguf";
  o.tokenizer = "/m/tokenizer.json";
  o.data.path = "/d/data.jsonl";
  o.data.format = DataFormat::Chat;
  o.data.chat_template = ChatTemplate::ChatML;
  o.data.separator = "<sep>";
  o.data.seq_len = 77;
  o.data.pack = true;
  o.data.validation_fraction = 0.1234567890123;
  o.data.max_validation_windows = 9;
  o.data.seed = 0xFFFFFFFFFFFFFFF1ull;  // above INT64_MAX
  o.lora.rank = 5;
  o.lora.alpha = 1.0f / 3.0f;
  o.lora.dropout = 0.07f;
  o.lora.rslora = true;
  o.lora.targets = {LoraTarget::K, LoraTarget::Down};
  o.optimizer.kind = OptimizerKind::Lion;
  o.optimizer.lr = 3.3e-4f;
  o.optimizer.beta1 = 0.85f;
  o.optimizer.beta2 = 0.98f;
  o.optimizer.eps = 1e-7f;
  o.optimizer.weight_decay = 0.01f;
  o.optimizer.dampening = 0.1f;
  o.optimizer.nesterov = true;
  o.optimizer.clip_threshold = 2.5f;
  o.optimizer.decay_rate = -0.7f;
  o.optimizer.max_grad_norm = 0.3f;
  o.schedule = LrScheduleKind::Cosine;
  o.warmup_steps = 3;
  o.steps = 11;
  o.epochs = 2;
  o.batch = 3;
  o.grad_accum = 4;
  o.backend = BackendKind::Vulkan;
  o.device = 1;
  o.quant = BaseQuant::None;
  o.max_memory = 123456789;
  o.checkpointing = CheckpointingMode::On;
  o.embedding_dtype = TableDtype::F16;
  o.precision = Precision::F16;
  o.eval_every = 6;
  o.save_every = 7;
  o.keep_checkpoints = 5;
  o.max_consecutive_skips = 8;
  o.seed = 0xFFFFFFFFFFFFFFFEull;
  const json j = train_options_json(o);
  const TrainOptions back = parse_train_options_json(json::parse(j.dump()), "job.json");
  EXPECT_EQ(train_options_json(back), j);
  // Spot checks that the comparison above is on values, not on a lossy form of both.
  EXPECT_EQ(back.optimizer.lr, o.optimizer.lr);
  EXPECT_EQ(back.lora.alpha, o.lora.alpha);
  EXPECT_EQ(back.data.validation_fraction, o.data.validation_fraction);
  EXPECT_EQ(back.data.seed, o.data.seed);
  EXPECT_EQ(back.seed, o.seed);
  EXPECT_EQ(back.lora.targets, o.lora.targets);
  EXPECT_EQ(back.device, o.device);
  EXPECT_EQ(back.checkpointing, CheckpointingMode::On);
  EXPECT_EQ(back.precision, Precision::F16);
  EXPECT_EQ(back.data.chat_template, o.data.chat_template);
  // The defaults' optional fields (no template, no pack, no device) come back unset.
  const TrainOptions d = parse_train_options_json(train_options_json(TrainOptions{}), "job.json");
  EXPECT_FALSE(d.data.chat_template || d.data.pack || d.device);
}

TEST(TrainOptionsJson, BadFieldsAreNamed) {
  const json good = train_options_json(tiny_job());
  auto refused = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return error_of<FormatError>([&] { parse_train_options_json(j, "q/jobs/000001.json"); });
  };
  EXPECT_TRUE(mentions(refused([](json& j) { j["lora"]["rnak"] = 4; }), {"q/jobs/000001.json", "train.lora.rnak"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["data"].erase("seq_len"); }), {"000001.json", "seq_len"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["steps"] = "ten"; }), {"000001.json", "steps", "integer"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["optimizer"]["kind"] = "adam"; }), {"train.optimizer.kind", "adam"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["lora"]["targets"] = {"q", "qq"}; }), {"train.lora.targets", "qq"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["precision"] = "bf16"; }), {"train.precision", "bf16"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["data"] = 3; }), {"train.data", "expected an object"}));
  EXPECT_TRUE(mentions(refused([](json& j) { j["seed"] = -1; }), {"train.seed", "unsigned"}));
}

TEST(JobQueue, AddListGetRoundTrip) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  EXPECT_TRUE(q.list().jobs.empty());  // a queue that does not exist lists as empty
  const JobRecord a = q.add(tiny_job(1));
  const JobRecord b = q.add(tiny_job(2));
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(b.id, 2);
  EXPECT_EQ(a.state, JobState::Queued);
  EXPECT_EQ(a.run_dir, tmp / "queue" / "runs" / "1");
  EXPECT_FALSE(fs::exists(a.run_dir));  // made when it runs
  EXPECT_TRUE(fs::exists(tmp / "queue" / "jobs" / "000001.json"));
  const JobListing l = q.list();
  ASSERT_EQ(l.jobs.size(), 2u);
  EXPECT_TRUE(l.problems.empty());
  EXPECT_EQ(l.jobs[0].id, 1);
  EXPECT_EQ(l.jobs[1].id, 2);
  const JobRecord back = q.get(2);
  EXPECT_EQ(job_record_json(back), job_record_json(b));
  EXPECT_EQ(back.train.seed, 2u);
  EXPECT_EQ(back.train.out, back.run_dir);
  ASSERT_EQ(back.history.size(), 1u);
  EXPECT_EQ(back.history[0].state, "queued");
  EXPECT_FALSE(back.created.empty());
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.get(7); }), {"no job 7", "queue"}));
}

TEST(JobQueue, PathsAreMadeAbsoluteAndAGivenRunDirectoryIsKept) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const fs::path cwd = fs::current_path();
  fs::current_path(tmp.path());
  fs::copy_file(test::data_path("datasets/tinystories_sample.txt"), tmp / "data.txt");
  TrainOptions o = tiny_job();
  o.data.path = "data.txt";
  o.out = "myrun";
  JobRecord r;
  EXPECT_NO_THROW(r = JobQueue("queue").add(o));
  fs::current_path(cwd);
  EXPECT_EQ(r.train.data.path, tmp / "data.txt");
  EXPECT_EQ(r.run_dir, tmp / "myrun");
  EXPECT_EQ(JobQueue(tmp / "queue").get(r.id).run_dir, tmp / "myrun");
  // The same run directory twice would mix two runs' checkpoints.
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] {
                         TrainOptions again = tiny_job();
                         again.out = tmp / "myrun";
                         JobQueue(tmp / "queue").add(again);
                       }),
                       {"myrun", "job 1"}));
}

TEST(JobQueue, ABadJobIsRefusedAtAddAndNothingIsWritten) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  TrainOptions o = tiny_job();
  o.data.path = tmp / "missing.txt";
  EXPECT_THROW(q.add(o), IoError);
  o = tiny_job();
  o.data.seq_len = 100000;  // beyond the model's context: the trainer's data check
  EXPECT_TRUE(mentions(error_of<Error>([&] { q.add(o); }), {"100000"}));
  o = tiny_job();
  o.lora.rank = 0;
  EXPECT_THROW(q.add(o), InvalidArgument);
  o = tiny_job();
  o.max_memory = 1024;  // the memory plan
  EXPECT_THROW(q.add(o), OutOfMemoryError);
  o = tiny_job();
  o.resume = tmp / "somewhere";
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.add(o); }), {"resume"}));
  fs::create_directories(tmp / "used");
  write_text(tmp / "used" / "x", "x");
  o = tiny_job();
  o.out = tmp / "used";
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.add(o); }), {"used", "not an empty directory"}));
  EXPECT_FALSE(fs::exists(tmp / "queue" / "jobs"));
  EXPECT_FALSE(fs::exists(tmp / "queue" / "queue.json"));
}

TEST(JobQueue, GarbledEntriesAreReportedByPathAndSkipped) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  for (int i = 0; i < 4; ++i) q.add(tiny_job(static_cast<std::uint64_t>(i)));
  const fs::path jobs = tmp / "queue" / "jobs";
  write_text(jobs / "000002.json", "{\"format\": \"pocketlora-job\", \"vers");  // torn (as no atomic write leaves)
  json wrong = job_record_json(q.get(3));
  wrong["state"] = "paused";
  write_text(jobs / "000003.json", wrong.dump());
  json moved = job_record_json(q.get(4));
  moved["id"] = 9;
  write_text(jobs / "000004.json", moved.dump());
  write_text(jobs / "notes.txt", "hello");
  write_text(jobs / "000001.json.tmp.999999", "half");  // a killed writer's temp: not an entry, not a problem

  const JobListing l = q.list();
  ASSERT_EQ(l.jobs.size(), 1u);
  EXPECT_EQ(l.jobs[0].id, 1);
  ASSERT_EQ(l.problems.size(), 4u);
  EXPECT_TRUE(mentions(l.problems[0].path.string() + " " + l.problems[0].message, {"000002.json", "not valid JSON"}));
  EXPECT_TRUE(mentions(l.problems[1].path.string() + " " + l.problems[1].message, {"000003.json", "state", "paused"}));
  EXPECT_TRUE(mentions(l.problems[2].path.string() + " " + l.problems[2].message, {"000004.json", "job 4", "9"}));
  EXPECT_TRUE(mentions(l.problems[3].path.string() + " " + l.problems[3].message, {"notes.txt", "not a job file"}));
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { q.get(2); }), {"000002.json"}));
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { q.cancel(3); }), {"000003.json", "paused"}));
  // The next runnable job skips them; a new job never takes a garbled entry's id.
  const auto claimed = q.claim_next({});
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, 1);
  q.update(1, [](JobRecord& j) { j.state = JobState::Done; });
  EXPECT_FALSE(q.claim_next({}));  // nothing else can be read
  EXPECT_EQ(q.add(tiny_job()).id, 5);
  // A garbled queue counter refuses adds (an id could repeat), naming the file; listing still works.
  write_text(tmp / "queue" / "queue.json", "[1, 2");
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { q.add(tiny_job()); }), {"queue.json"}));
  EXPECT_EQ(q.list().jobs.size(), 2u);
}

TEST(JobQueue, AnIdIsNeverHandedOutTwice) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  q.add(tiny_job());
  q.add(tiny_job());
  // A kill between a job's file and the counter's update leaves the counter behind.
  write_text(tmp / "queue" / "queue.json", R"({"format": "pocketlora-job-queue", "version": 1, "next_id": 2})");
  EXPECT_EQ(q.add(tiny_job()).id, 3);
  EXPECT_EQ(q.get(2).train.seed, 42u);  // untouched
}

TEST(JobQueue, CancelFollowsTheStates) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  for (int i = 0; i < 4; ++i) q.add(tiny_job());
  // Queued: cancelled at once, and skipped by the runner.
  JobRecord r = q.cancel(1);
  EXPECT_EQ(r.state, JobState::Cancelled);
  EXPECT_FALSE(r.finished.empty());
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.cancel(1); }), {"job 1", "already cancelled"}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.cancel(42); }), {"no job 42"}));
  // Running: a request its runner acts on; a new runner finding it so cancels it before running anything.
  auto claimed = q.claim_next([](const JobRecord& j) { return "attempt " + std::to_string(j.attempts); });
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, 2);
  EXPECT_EQ(claimed->state, JobState::Running);
  EXPECT_EQ(claimed->attempts, 1);
  EXPECT_EQ(claimed->history.back().note, "attempt 1");
  r = q.cancel(2);
  EXPECT_EQ(r.state, JobState::Running);
  EXPECT_TRUE(r.cancel_requested);
  claimed = q.claim_next({});
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, 3);
  EXPECT_EQ(q.get(2).state, JobState::Cancelled);
  // Running jobs come first again after a runner's death: oldest first.
  claimed = q.claim_next({});
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, 3);
  EXPECT_EQ(claimed->attempts, 2);
  q.update(3, [](JobRecord& j) { j.state = JobState::Done; });
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.cancel(3); }), {"already done"}));
  claimed = q.claim_next({});
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, 4);
}

TEST(JobQueue, OneRunnerPerQueue) {
  test::TempDir tmp;
  JobQueue q(tmp / "queue");
  const FileLock held = q.lock_runner();
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { q.lock_runner(); }),
                       {"already being run", "pid " + std::to_string(::getpid())}));
}

TEST(JobQueue, ConcurrentAddProcessesEachGetTheirOwnId) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const std::string add = "schedule --queue " + (tmp / "queue").string() +
                          " add --backend cpu --steps 2 --seq-len 32 --batch 2 --model " + bin.string() +
                          " --data " + test::data_path("datasets/tinystories_sample.txt").string();
  std::vector<pid_t> children;
  for (int i = 0; i < 6; ++i) children.push_back(test::spawn_cli(add));
  for (pid_t c : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(c, &status, 0), c);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const JobListing l = JobQueue(tmp / "queue").list();
  EXPECT_TRUE(l.problems.empty());
  std::set<std::int64_t> ids;
  for (const auto& j : l.jobs) ids.insert(j.id);
  EXPECT_EQ(ids, (std::set<std::int64_t>{1, 2, 3, 4, 5, 6}));
}

}  // namespace
}  // namespace pocketlora
