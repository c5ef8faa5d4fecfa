// `pocketlora train` as a user runs it: the JSON summary and the files of --out, clear refusals, and SIGKILL at
// arbitrary moments (mid-step, mid-checkpoint) followed by --resume ending with the adapter of an uninterrupted
// run, bit for bit on the CPU backend, with no corrupt checkpoint ever left behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/formats/safetensors.h"
#include "host/train/checkpoint.h"
#include "host/util/splitmix64.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;

using test::run_cli;

std::string train_args(const fs::path& out) {
  return "train --backend cpu --model " + test::data_path("models/stories260K/stories260K.bin").string() + " --data " +
         test::data_path("datasets/tinystories_sample.txt").string() +
         " --seq-len 32 --batch 2 --grad-accum 2 --steps 8 --save-every 1 --eval-every 4 --lr 1e-3 --out " +
         out.string();
}

TEST(TrainCli, JsonSummaryAndRunDirectory) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const test::CliResult r = run_cli(train_args(tmp / "run") + " --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["steps"], 8);
  EXPECT_EQ(j["skipped"], 0);
  EXPECT_GT(j["planned_peak_bytes"].get<double>(), 0);
  EXPECT_TRUE(fs::exists(tmp / "run" / "adapter_model.safetensors"));
  const auto cfg = nlohmann::json::parse(std::ifstream(tmp / "run" / "adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 8);
  std::ifstream metrics(tmp / "run" / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, 8);
}

TEST(TrainCli, BadOptionsExitWithTheirCategory) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  test::CliResult r = run_cli(train_args(tmp / "run") + " --targets q,qq");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [invalid_input]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("qq"), std::string::npos) << r.out;
  r = run_cli(train_args(tmp / "run") + " --embedding-dtype bf16");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [invalid_input]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'bf16'"), std::string::npos) << r.out;
  r = run_cli(train_args(tmp / "run") + " --precision bf16");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [invalid_input]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--precision 'bf16'"), std::string::npos) << r.out;
  r = run_cli(train_args(tmp / "run") + " --max-memory 1K");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [out_of_memory]"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "run" / "metrics.jsonl"));
}

std::vector<std::pair<std::string, Tensor>> latest_adapter(const fs::path& run_dir) {
  return read_checkpoint_dir(resolve_resume(run_dir)).adapter;
}

TEST(TrainCli, SigkillAnywhereThenResumeEndsBitIdentical) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const auto t0 = std::chrono::steady_clock::now();
  const test::CliResult whole = run_cli(train_args(tmp / "whole") + " --json");
  ASSERT_EQ(whole.rc, 0) << whole.out;
  // Kills land uniformly over the time a whole run takes on this machine (start-up, steps, saves).
  const auto run_us = std::max<std::int64_t>(
      1000, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());

  const fs::path out = tmp / "killed";
  std::uint64_t seed = 99;
  int kills = 0;
  std::int64_t window_us = run_us;
  for (int round = 0; round < 60; ++round) {
    const bool have_checkpoint = !list_checkpoints(out).empty();
    std::string args = train_args(out) + " --json";
    if (have_checkpoint) args += " --resume " + out.string();
    const pid_t child = test::spawn_cli(args);
    ASSERT_GE(child, 0);
    std::this_thread::sleep_for(std::chrono::microseconds(splitmix64(seed) % static_cast<std::uint64_t>(window_us)));
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
      if (kills >= 3) break;
      // It finished before enough kills (the machine was faster than when timed): start over, killing sooner.
      fs::remove_all(out);
      kills = 0;  // counted within the chain of runs whose final adapter is compared
      window_us = std::max<std::int64_t>(1000, window_us / 2);
      continue;
    }
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    ++kills;
    // Whatever the moment, every checkpoint present is complete.
    for (const auto& [step, dir] : list_checkpoints(out)) EXPECT_NO_THROW(read_checkpoint_dir(dir)) << dir;
  }
  // Finish the run.
  const test::CliResult last =
      run_cli(train_args(out) + " --json" + (list_checkpoints(out).empty() ? "" : " --resume " + out.string()));
  ASSERT_EQ(last.rc, 0) << last.out;
  EXPECT_GE(kills, 3);
  const auto a = latest_adapter(tmp / "whole"), b = latest_adapter(out);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
}

}  // namespace
}  // namespace pocketlora
