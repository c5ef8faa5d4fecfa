// The `pocketlora` CLI as a user runs it: exit codes and machine-readable output.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/run_cli.h"
#include "common/test_data.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#endif

namespace {

using Result = pocketlora::test::CliResult;
// `stderr_to` is the shell redirection of stderr: into stdout by default.
Result run(const std::string& args, const std::string& stderr_to = "2>&1") {
  return pocketlora::test::run_cli(args, stderr_to);
}

TEST(Cli, VersionAndUnknownCommand) {
  auto v = run("--version");
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("pocketlora " POCKETLORA_VERSION), std::string::npos) << v.out;
  EXPECT_NE(run("no-such-command").rc, 0);
}

TEST(Cli, InspectJsonDescribesEachFormat) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(q8, "models/stories260K/derived/stories260K-mixed-Q8_0.gguf");
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  for (const std::filesystem::path& rel : {bin, q8, hf}) {
    auto r = run("inspect --json " + rel.string());
    ASSERT_EQ(r.rc, 0) << rel << ": " << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["llama_config"]["dim"], 64) << rel;
    EXPECT_EQ(j["llama_config"]["n_kv_heads"], 4) << rel;
    EXPECT_GE(j["tensor_count"].get<int>(), 47) << rel;
  }
  auto bad = run("inspect /nonexistent/model.gguf");
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("/nonexistent/model.gguf"), std::string::npos) << bad.out;
}

// Teacher-forced on the run.c greedy ids, the top-1 next token at each position must be the id greedy decoding
// produced next (shared/data expected/runc_t0_n200.ids.json), on every backend the build has.
TEST(Cli, ForwardTopTokenFollowsGreedyReferenceOnEachBackend) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(ids_path, "models/stories260K/expected/runc_t0_n200.ids.json");
  const auto ids = nlohmann::json::parse(std::ifstream(ids_path)).at("tokens_bos_plus_200");
  std::string tokens;
  for (std::size_t i = 0; i < 12; ++i) {
    if (i) tokens += ',';
    tokens += std::to_string(ids.at(i).get<int>());
  }
  std::vector<std::string> backends = {"cpu"};
  if (POCKETLORA_HAS_VULKAN) backends.push_back("vulkan");
  for (const auto& backend : backends) {
    auto r = run("forward --json --top-k 1 --backend " + backend + " --model " + bin.string() + " --tokens " + tokens);
    ASSERT_EQ(r.rc, 0) << backend << ": " << r.out;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["positions"].size(), 12u) << backend;
    for (std::size_t p = 0; p + 1 < 12; ++p)
      EXPECT_EQ(j["positions"][p]["top"][0]["id"].get<int>(), ids.at(p + 1).get<int>()) << backend << " position " << p;
  }
  auto bad = run("forward --backend metal --tokens 1 --model " + bin.string());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("[invalid_input]"), std::string::npos) << bad.out;
  auto missing = run("forward --tokens 1 --model /nonexistent/model.bin");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("[io]"), std::string::npos) << missing.out;
}

#if POCKETLORA_HAS_VULKAN
// Runs the CLI with stdout and stderr apart (stderr through a file in `scratch`).
struct SplitResult {
  int rc;
  std::string out, err;
};

SplitResult run_split(const std::string& args, const std::filesystem::path& scratch) {
  const auto err_path = scratch / "stderr.txt";
  const Result r = run(args, "2>'" + err_path.string() + "'");
  std::stringstream err;
  err << std::ifstream(err_path).rdbuf();
  return {r.rc, r.out, err.str()};
}

TEST(Cli, DevicesJsonIsValidAndNamesTheSelectedDevice) {
  // The CLI enables the validation layer from POCKETLORA_VALIDATION (inherited, as ctest sets it) and prints any
  // message it reported to stderr on exit (tools/main.cpp).
  pocketlora::test::TempDir tmp;
  auto r = run_split("devices --json", tmp.path());
  if (r.rc != 0) {
    if (pocketlora::test::gpu_required())
      FAIL() << "POCKETLORA_REQUIRE_GPU=1 but `pocketlora devices` failed (rc " << r.rc << "): " << r.err;
    GTEST_SKIP() << "no Vulkan device: " << r.err;
  }
  EXPECT_EQ(r.err.find("validation"), std::string::npos) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["devices"].is_array());
  ASSERT_FALSE(j["devices"].empty());
  const int sel = j["selected"].get<int>();
  EXPECT_FALSE(j["devices"][static_cast<std::size_t>(sel)]["name"].get<std::string>().empty());
  EXPECT_TRUE(j["devices"][static_cast<std::size_t>(sel)].contains("profile"));
}
#endif

}  // namespace
