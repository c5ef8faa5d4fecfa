// `pocketlora adapters` end to end on an adapter the test trains (stories260K, r=2 on q and v, 2 steps): the
// manifest carries the run's checkpoint fingerprint and final metrics, every subcommand in human and JSON form,
// another base refused unless --force, a corrupt entry warned about by path, SIGKILLed adds that never leave a
// partial adapter, and the default store directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/adapters/adapter_store.h"
#include "host/adapters/peft_export.h"
#include "host/model/llama_model.h"
#include "host/util/read_file.h"
#include "host/util/splitmix64.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

nlohmann::json json_of(const test::CliResult& r) {
  EXPECT_EQ(r.rc, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

// The loss of the last line of a metrics.jsonl, read here rather than through the code under test.
double last_logged_loss(const fs::path& metrics) {
  std::ifstream in(metrics);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return nlohmann::json::parse(last)["loss"].get<double>();
}

TEST(AdaptersCli, TrainedAdapterThroughEverySubcommand) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(data, "datasets/tinystories_sample.txt");
  POCKETLORA_REQUIRE_DATA(other_base, "models/stories260K/derived/stories260K-f32.gguf");
  test::TempDir tmp;
  const fs::path run = tmp / "run";
  const test::CliResult trained =
      run_cli("train --backend cpu --model " + model.string() + " --data " + data.string() +
              " --seq-len 16 --batch 2 --steps 2 --rank 2 --alpha 4 --targets q,v --out " + run.string() + " --json");
  ASSERT_EQ(trained.rc, 0) << trained.out;
  const std::string store = " --store " + (tmp / "store").string();
  const std::string adapters = "adapters" + store + " ";

  const auto added = json_of(
      run_cli(adapters + "add " + run.string() + " --name tiny --model " + model.string() + " --json", "2>/dev/null"));
  EXPECT_EQ(added["name"], "tiny");
  EXPECT_EQ(added["lora"]["r"], 2);
  EXPECT_EQ(added["lora"]["alpha"], 4.0);
  EXPECT_EQ(added["lora"]["targets"], nlohmann::json({"q", "v"}));
  EXPECT_EQ(added["training"]["steps"], 2);
  EXPECT_EQ(added["training"]["final_loss"].get<double>(), last_logged_loss(run / "metrics.jsonl"));
  EXPECT_TRUE(added["training"]["final_val_loss"].is_number());
  const auto checkpoint = nlohmann::json::parse(read_file_text(run / "checkpoint-2" / "checkpoint.json"));
  EXPECT_EQ(added["base"]["fingerprint"], checkpoint["base_model_fingerprint"]);
  EXPECT_EQ(added["base"]["from_training_run"], true);
  EXPECT_EQ(added["base"]["quant"], "nf4");
  EXPECT_EQ(added["size_bytes"].get<std::uint64_t>(),
            fs::file_size(run / "adapter_model.safetensors") + fs::file_size(run / "adapter_config.json"));

  test::CliResult r = run_cli(adapters + "list");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("NAME"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tiny "), std::string::npos) << r.out;
  r = run_cli(adapters + "show tiny");
  EXPECT_NE(r.out.find("r=2 alpha=4"), std::string::npos) << r.out;

  EXPECT_EQ(json_of(run_cli(adapters + "disable tiny --json"))["enabled"], false);
  EXPECT_EQ(json_of(run_cli("adapters list --json" + store))["adapters"][0]["enabled"], false);
  EXPECT_EQ(json_of(run_cli(adapters + "enable tiny --json"))["enabled"], true);
  EXPECT_EQ(json_of(run_cli(adapters + "rename tiny tiny2 --json"))["name"], "tiny2");

  const fs::path out = tmp / "exported";
  r = run_cli(adapters + "export tiny2 --out " + out.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json"})
    EXPECT_EQ(read_file_text(out / f), read_file_text(run / f)) << f;

  // GGUF: the base comes from what the adapter recorded (adapter_config.json names the --model path the trainer was
  // given) or --model; the file is the one `pocketlora export --format gguf` writes (the same writer).
  const fs::path gguf = tmp / "tiny2.gguf", want_gguf = tmp / "export.gguf";
  r = run_cli(adapters + "export tiny2 --format gguf --out " + gguf.string());
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("GGUF LoRA, f32"), std::string::npos) << r.out;
  ASSERT_EQ(run_cli("export --model " + model.string() + " --adapter " + run.string() + " --format gguf --out " +
                    want_gguf.string())
                .rc,
            0);
  EXPECT_EQ(read_file_text(gguf), read_file_text(want_gguf));
  r = run_cli(adapters + "export tiny2 --format gguf --dtype f16 --json --model " + model.string() + " --out " +
              (tmp / "tiny2-f16.gguf").string());
  EXPECT_EQ(json_of(r)["format"], "gguf");
  EXPECT_LT(fs::file_size(tmp / "tiny2-f16.gguf"), fs::file_size(gguf));
  r = run_cli(adapters + "export tiny2 --format gguf --model " + other_base.string() + " --out " +
              (tmp / "other.gguf").string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("another base model"), std::string::npos) << r.out;
  r = run_cli(adapters + "export tiny2 --dtype f16 --out " + (tmp / "peft16").string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("--format gguf only"), std::string::npos) << r.out;

  // A plain PEFT directory (no checkpoint): the fingerprint comes from --model with --quant's default, nf4, and
  // must be the one the trainer recorded for the same model.
  const auto plain = json_of(
      run_cli(adapters + "add " + out.string() + " --name plain --model " + model.string() + " --json", "2>/dev/null"));
  EXPECT_EQ(plain["base"]["fingerprint"], checkpoint["base_model_fingerprint"]);
  EXPECT_EQ(plain["base"]["from_training_run"], false);
  EXPECT_TRUE(plain["training"]["steps"].is_null());

  // Another base (the same weights converted to GGUF: another file, another fingerprint).
  r = run_cli(adapters + "add " + run.string() + " --name other --model " + other_base.string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("another base model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--force"), std::string::npos) << r.out;
  r = run_cli(adapters + "add " + run.string() + " --name other --model " + other_base.string() + " --force");
  EXPECT_EQ(r.rc, 0) << r.out;

  // The check before applying: the trained one applies to its base; the forced one (trained on stories260K.bin,
  // recorded so) is refused for the GGUF copy unless --force, and a disabled one is refused too.
  EXPECT_EQ(json_of(run_cli(adapters + "check tiny2 --json --model " + model.string()))["same_base"], true);
  r = run_cli(adapters + "check other --model " + other_base.string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("adapter 'other' belongs to another base model"), std::string::npos) << r.out;
  const auto forced = json_of(run_cli(adapters + "check other --force --json --model " + other_base.string()));
  EXPECT_EQ(forced["same_base"], false);
  EXPECT_EQ(forced["applicable"], true);
  ASSERT_EQ(run_cli(adapters + "disable tiny2").rc, 0);
  r = run_cli(adapters + "check tiny2 --model " + model.string());
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("disabled"), std::string::npos) << r.out;
  ASSERT_EQ(run_cli(adapters + "enable tiny2").rc, 0);

  r = run_cli(adapters + "add " + run.string() + " --name ../escape --model " + model.string());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [invalid_input]: adapter name '../escape'"), std::string::npos) << r.out;

  std::ofstream(tmp / "store" / "plain" / "manifest.json", std::ios::trunc) << "{";
  r = run_cli(adapters + "list --json", "2>" + (tmp / "stderr.txt").string());
  const auto listed = json_of(r);
  ASSERT_EQ(listed["adapters"].size(), 2u);
  EXPECT_EQ(listed["adapters"][0]["name"], "other");
  EXPECT_EQ(listed["adapters"][1]["name"], "tiny2");
  ASSERT_EQ(listed["problems"].size(), 1u);
  EXPECT_EQ(listed["problems"][0]["path"], (tmp / "store" / "plain").string());
  EXPECT_NE(read_file_text(tmp / "stderr.txt").find("warning: skipped " + (tmp / "store" / "plain").string()),
            std::string::npos);

  EXPECT_EQ(json_of(run_cli(adapters + "delete tiny2 --json"))["deleted"], "tiny2");
  EXPECT_FALSE(fs::exists(tmp / "store" / "tiny2"));
  r = run_cli(adapters + "show tiny2");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("no adapter 'tiny2'"), std::string::npos) << r.out;
}

// Runs the CLI with `args`, SIGKILLs it after `delay_us` unless it finished; returns true when it was killed.
bool run_and_kill(const std::string& args, std::int64_t delay_us) {
  const pid_t child = test::spawn_cli(args);
  std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  int status = 0;
  if (::waitpid(child, &status, WNOHANG) == child) return false;
  ::kill(child, SIGKILL);
  ::waitpid(child, &status, 0);
  return true;
}

TEST(AdaptersCli, SigkilledAddsNeverLeaveAPartialAdapter) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  // r=64 on all seven linears (1.6 MB) so the copy, digests and fsyncs are a fair share of the run.
  const LlamaModel m = load_llama_model(model, BaseQuant::None);
  PeftAdapter a;
  a.config.r = 64;
  a.config.targets = {"q", "k", "v", "o", "gate", "up", "down"};
  const std::map<std::string, std::pair<std::int64_t, std::int64_t>> out_in = {
      {"q", {64, 64}},     {"k", {32, 64}},   {"v", {32, 64}},    {"o", {64, 64}},
      {"gate", {172, 64}}, {"up", {172, 64}}, {"down", {64, 172}}};
  for (int l = 0; l < 5; ++l)
    for (const auto& t : a.config.targets) {
      const auto [out_features, in_features] = out_in.at(t);
      const std::string p = "layers." + std::to_string(l) + "." + t + ".";
      a.tensors.emplace_back(p + "A", Tensor::zeros({64, in_features}));
      a.tensors.emplace_back(p + "B", Tensor::zeros({out_features, 64}));
    }
  write_peft_adapter(tmp / "src", a, m.config, m.rope_layout);

  const std::string add = "adapters --store " + (tmp / "store").string() + " add " + (tmp / "src").string() +
                          " --model " + model.string() + " --name k";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_cli(add).rc, 0);
  const auto run_us = std::max<std::int64_t>(
      1000, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  AdapterStore store(tmp / "store");
  store.remove("k");

  std::uint64_t seed = 7;
  int killed = 0, complete = 0, torn = 0;
  for (int round = 0; round < 12; ++round) {
    killed += run_and_kill(add, static_cast<std::int64_t>(splitmix64(seed) % static_cast<std::uint64_t>(run_us)));
    for (const auto& e : fs::directory_iterator(tmp / "store"))
      torn += e.path().filename().string().find(".tmp.") != std::string::npos;
    const AdapterListing l = store.list();
    EXPECT_TRUE(l.problems.empty()) << "round " << round << ": " << l.problems[0].path << ": " << l.problems[0].message;
    ASSERT_LE(l.adapters.size(), 1u);
    if (!l.adapters.empty()) {  // the rename happened: the adapter is whole
      EXPECT_EQ(store.show("k").size_bytes, l.adapters[0].size_bytes);
      store.remove("k");
      ++complete;
    }
  }
  EXPECT_GE(killed, 3);
  ASSERT_EQ(run_cli(add).rc, 0);  // and the next add clears what the killed ones left
  for (const auto& e : fs::directory_iterator(tmp / "store"))
    EXPECT_TRUE(e.path().filename() == "k" || e.path().filename() == ".lock") << e.path();
  std::cout << "[ kills    ] " << killed << " of 12 adds killed, " << complete << " had completed, " << torn
            << " rounds found a killed add's temporary\n";
}

TEST(AdaptersCli, DefaultStoreIsUnderPocketloraHomeAndHelpSaysSo) {
  test::TempDir tmp;
  const char* old = std::getenv("POCKETLORA_HOME");
  const std::string saved = old ? old : "";
  ::setenv("POCKETLORA_HOME", tmp.path().c_str(), 1);  // the CLI child inherits it
  const test::CliResult r = run_cli("adapters list --json");
  if (old) ::setenv("POCKETLORA_HOME", saved.c_str(), 1);
  else ::unsetenv("POCKETLORA_HOME");
  const auto j = json_of(r);
  EXPECT_EQ(j["store"], (tmp / "adapters").string());
  EXPECT_TRUE(j["adapters"].empty());
  const test::CliResult help = run_cli("adapters --help");
  EXPECT_NE(help.out.find("$POCKETLORA_HOME/adapters, else ~/.pocketlora/adapters"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace pocketlora
