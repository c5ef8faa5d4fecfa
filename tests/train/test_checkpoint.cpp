// Training checkpoints: exact round trip, run-directory bookkeeping (pointer, keep-last-K, leftovers of killed
// writers), refusal of corrupt files and of checkpoints that belong to another base or config, and SIGKILLs
// during saves never leaving a checkpoint that fails to load.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/train/checkpoint.h"
#include "host/util/read_file.h"
#include "host/util/splitmix64.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::mentions;
using test::TempDir;

Tensor random_tensor(Shape shape, std::uint64_t seed) {
  Tensor t = Tensor::zeros(std::move(shape));
  std::uint64_t s = seed;
  // Arbitrary bit patterns of finite floats (signs, tiny and large exponents) so "exact" means bit-exact.
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    std::uint32_t bits = static_cast<std::uint32_t>(splitmix64(s));
    if (((bits >> 23) & 0xff) == 0xff) bits &= ~(1u << 30);  // no Inf/NaN
    std::memcpy(t.data<float>() + i, &bits, 4);
  }
  return t;
}

Checkpoint sample_checkpoint(std::int64_t step) {
  Checkpoint c;
  c.step = step;
  c.data = {2, 37};
  c.rng_state = {0xffffffffffffffffull, 0, 0x9e3779b97f4a7c15ull};
  c.base_fingerprint = "sampled-sha256-v1:base";
  c.config = {{"lora", {{"rank", 4}, {"alpha", 8.0}, {"targets", {"q", "v"}}}}, {"optimizer", "adamw"}, {"lr", 2e-4}};
  c.adapter = {{"layers.0.q.A", random_tensor({4, 6}, 1)}, {"layers.0.q.B", random_tensor({6, 4}, 2)},
               {"layers.1.v.A", random_tensor({4, 6}, 3)}};
  Tensor half = Tensor::zeros({3}, DType::F16);
  half.data<std::uint16_t>()[0] = 0x3c00, half.data<std::uint16_t>()[1] = 0x8001, half.data<std::uint16_t>()[2] = 0x7bff;
  c.optimizer = {{"layers.0.q.A.m", random_tensor({4, 6}, 4)}, {"layers.0.q.A.v", random_tensor({4, 6}, 5)},
                 {"f16_state", half}};
  return c;
}

void expect_same_tensors(const std::vector<std::pair<std::string, Tensor>>& a,
                         const std::vector<std::pair<std::string, Tensor>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.dtype(), b[i].second.dtype()) << a[i].first;
    ASSERT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
  }
}

void write_file(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

TEST(Checkpoint, RoundTripIsExact) {
  TempDir tmp;
  const Checkpoint c = sample_checkpoint(7);
  const fs::path dir = save_checkpoint(tmp.path(), c, 3);
  EXPECT_EQ(dir, tmp / "checkpoint-7");
  EXPECT_EQ(resolve_resume(tmp.path()), dir);
  EXPECT_EQ(resolve_resume(dir), dir);
  const Checkpoint r = load_checkpoint(dir, {c.base_fingerprint, c.config, {"/lora/rank", "/optimizer"}});
  EXPECT_EQ(r.step, 7);
  EXPECT_EQ(r.data.epoch, 2);
  EXPECT_EQ(r.data.index, 37);
  EXPECT_EQ(r.rng_state, c.rng_state);
  EXPECT_EQ(r.base_fingerprint, c.base_fingerprint);
  EXPECT_EQ(r.config, c.config);
  expect_same_tensors(r.adapter, c.adapter);
  expect_same_tensors(r.optimizer, c.optimizer);
  EXPECT_EQ(read_file_text(tmp / "latest_checkpoint"), "checkpoint-7\n");
}

TEST(Checkpoint, KeepsTheLastKAndPointsAtTheNewest) {
  TempDir tmp;
  for (std::int64_t step : {10, 20, 30, 40, 50}) save_checkpoint(tmp.path(), sample_checkpoint(step), 2);
  auto all = list_checkpoints(tmp.path());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 40);
  EXPECT_EQ(all[1].first, 50);
  EXPECT_EQ(resolve_resume(tmp.path()), tmp / "checkpoint-50");
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { save_checkpoint(tmp.path(), sample_checkpoint(60), 0); }),
                       {"keep", ">= 1", "0"}));
}

TEST(Checkpoint, ResavingAnEarlierStepDropsTheAbandonedContinuation) {
  TempDir tmp;
  for (std::int64_t step : {10, 20, 30}) save_checkpoint(tmp.path(), sample_checkpoint(step), 5);
  Checkpoint again = sample_checkpoint(20);
  again.data.index = 99;
  save_checkpoint(tmp.path(), again, 5);  // replaces checkpoint-20 in place
  auto all = list_checkpoints(tmp.path());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all.back().first, 20);
  EXPECT_EQ(read_checkpoint_dir(resolve_resume(tmp.path())).data.index, 99);
}

TEST(Checkpoint, LeftoverTempDirsAreIgnoredThenCleaned) {
  TempDir tmp;
  save_checkpoint(tmp.path(), sample_checkpoint(5), 3);
  // A save killed mid-write: a temp dir with a higher step and only part of its files (pid beyond any pid_max).
  const fs::path leftover = tmp / "checkpoint-9.tmp.999999999";
  fs::create_directory(leftover);
  write_file(leftover / "state.safetensors", "partial");
  fs::create_directory(tmp / "checkpoint-12");  // not ours: no checkpoint.json, never resumed from
  EXPECT_EQ(resolve_resume(tmp.path()), tmp / "checkpoint-5");
  fs::remove(tmp / "latest_checkpoint");  // killed before the first pointer write: the scan decides
  EXPECT_EQ(resolve_resume(tmp.path()), tmp / "checkpoint-5");
  write_file(tmp / "latest_checkpoint", "checkpoint-9\n");  // a pointer to nothing complete is not trusted
  EXPECT_EQ(resolve_resume(tmp.path()), tmp / "checkpoint-5");
  save_checkpoint(tmp.path(), sample_checkpoint(6), 3);
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_EQ(resolve_resume(tmp.path()), tmp / "checkpoint-6");
}

TEST(Checkpoint, ResolveRefusesDirectoriesWithoutACheckpoint) {
  TempDir tmp;
  EXPECT_TRUE(mentions(error_of<IoError>([&] { resolve_resume(tmp.path()); }),
                       {tmp.path().string(), "no complete checkpoint"}));
  EXPECT_TRUE(mentions(error_of<IoError>([&] { resolve_resume(tmp / "absent"); }), {"absent", "no such directory"}));
}

TEST(Checkpoint, CorruptOrTruncatedFilesAreRefusedByName) {
  TempDir tmp;
  const fs::path dir = save_checkpoint(tmp.path(), sample_checkpoint(3), 3);
  const std::string state = read_file_text(dir / "state.safetensors"), meta = read_file_text(dir / "checkpoint.json");

  write_file(dir / "state.safetensors", state.substr(0, state.size() / 2));
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_checkpoint_dir(dir); }),
                       {"state.safetensors", "SHA-256", "truncated or corrupt"}));
  std::string flipped = state;
  flipped[flipped.size() - 5] ^= 0x10;  // one bit of one weight
  write_file(dir / "state.safetensors", flipped);
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_checkpoint_dir(dir); }), {"state.safetensors", "SHA-256"}));
  fs::remove(dir / "state.safetensors");
  EXPECT_TRUE(mentions(error_of<IoError>([&] { read_checkpoint_dir(dir); }), {"state.safetensors", "missing"}));
  write_file(dir / "state.safetensors", state);

  write_file(dir / "checkpoint.json", meta.substr(0, meta.size() / 2));
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_checkpoint_dir(dir); }), {"checkpoint.json", "not valid JSON"}));
  std::string v2 = meta;
  v2.replace(v2.find("\"format_version\": 1"), 19, "\"format_version\": 2");
  write_file(dir / "checkpoint.json", v2);
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_checkpoint_dir(dir); }),
                       {"checkpoint.json", "format_version", "expected 1", "found 2"}));
  std::string no_step = meta;
  no_step.replace(no_step.find("\"step\""), 6, "\"stop\"");
  write_file(dir / "checkpoint.json", no_step);
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_checkpoint_dir(dir); }), {"checkpoint.json", "'step'"}));
  write_file(dir / "checkpoint.json", meta);
  EXPECT_EQ(read_checkpoint_dir(dir).step, 3);
}

TEST(Checkpoint, AnotherBaseOrConfigIsRefusedNamingTheField) {
  TempDir tmp;
  const Checkpoint c = sample_checkpoint(3);
  const fs::path dir = save_checkpoint(tmp.path(), c, 3);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { load_checkpoint(dir, {"sampled-sha256-v1:other", c.config, {}}); }),
                       {dir.string(), "base_model_fingerprint", "expected sampled-sha256-v1:other",
                        "found sampled-sha256-v1:base"}));
  nlohmann::json cfg = c.config;
  cfg["lora"]["rank"] = 16;
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { load_checkpoint(dir, {c.base_fingerprint, cfg, {"/lora/rank"}}); }),
                       {"'/lora/rank'", "expected 16", "found 4"}));
  EXPECT_NO_THROW(load_checkpoint(dir, {c.base_fingerprint, cfg, {"/lora/alpha"}}));  // only listed fields matter
  cfg.erase("optimizer");
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { load_checkpoint(dir, {c.base_fingerprint, cfg, {"/optimizer"}}); }),
                       {"'/optimizer'", "expected (absent)", "found \"adamw\""}));
}

// A child saves checkpoints in a loop and is SIGKILLed at arbitrary moments (mid-tensor-write, mid-fsync,
// mid-rename, mid-prune): after every kill the run directory resolves to a checkpoint that loads completely,
// and the step never goes backwards.
TEST(Checkpoint, SigkillDuringSavesNeverLeavesABrokenLatest) {
  TempDir tmp;
  std::int64_t last_step = -1, next_step = 1;
  std::uint64_t seed = 12345;
  for (int round = 0; round < 8; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        for (std::int64_t s = next_step;; ++s) save_checkpoint(tmp.path(), sample_checkpoint(s), 2);
      } catch (...) {
        ::_exit(1);  // the parent sees an exit instead of the kill and fails
      }
    }
    // The first round waits for one complete save (fsync can take long on a loaded machine), so the loop below
    // always has a checkpoint to check; then every kill lands at a random moment of the next saves.
    if (round == 0)
      for (int i = 0; i < 10000 && list_checkpoints(tmp.path()).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + splitmix64(seed) % 30000));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    if (list_checkpoints(tmp.path()).empty() && last_step < 0) continue;  // killed before the first save finished
    const fs::path latest = resolve_resume(tmp.path());
    const Checkpoint c = read_checkpoint_dir(latest);  // throws (fails the test) on a torn checkpoint
    EXPECT_EQ(c.adapter.size(), 3u);
    EXPECT_GE(c.step, last_step);
    last_step = c.step;
    next_step = c.step + 1;
  }
  EXPECT_GT(last_step, 0);
}

}  // namespace
}  // namespace pocketlora
