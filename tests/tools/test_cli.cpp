// The `pocketlora` CLI as a user runs it: exit codes and machine-readable output.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/test_data.h"

namespace {

struct Result {
  int rc;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(POCKETLORA_BUILD_DIR) + "/pocketlora " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Cli, VersionAndUnknownCommand) {
  auto v = run("--version");
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("pocketlora " POCKETLORA_VERSION), std::string::npos) << v.out;
  EXPECT_NE(run("no-such-command").rc, 0);
}

TEST(Cli, InspectJsonDescribesEachFormat) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  for (const char* rel : {"models/stories260K/stories260K.bin", "models/stories260K/derived/stories260K-mixed-Q8_0.gguf",
                          "models/stories260K/derived/hf/model.safetensors"}) {
    auto r = run("inspect --json " + pocketlora::test::data_path(rel).string());
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

#if POCKETLORA_HAS_VULKAN
TEST(Cli, DevicesJsonIsValidAndNamesTheSelectedDevice) {
  auto r = run("devices --json");
  if (r.rc != 0) GTEST_SKIP() << "no Vulkan device: " << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["devices"].is_array());
  ASSERT_FALSE(j["devices"].empty());
  const int sel = j["selected"].get<int>();
  EXPECT_FALSE(j["devices"][static_cast<std::size_t>(sel)]["name"].get<std::string>().empty());
  EXPECT_TRUE(j["devices"][static_cast<std::size_t>(sel)].contains("profile"));
}
#endif

}  // namespace
