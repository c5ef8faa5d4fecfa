// `pocketlora adapters` end to end on an adapter the test trains (stories260K, r=2 on q and v, 2 steps): the
// manifest carries the run's checkpoint fingerprint and final metrics, every subcommand in human and JSON form,
// another base refused unless --force, a corrupt entry warned about by path, and the default store directory.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/util/read_file.h"

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
