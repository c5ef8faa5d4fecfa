#pragma once
// Runs the built `pocketlora` binary as a user would, for the CLI tests.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace pocketlora::test {

struct CliResult {
  int rc;  // exit status; -1 when it did not exit normally
  std::string out;
};

inline std::string cli_binary() { return std::string(POCKETLORA_BUILD_DIR) + "/pocketlora"; }

// `stderr_to` is the shell redirection of stderr: into stdout by default.
inline CliResult run_cli(const std::string& args, const std::string& stderr_to = "2>&1") {
  const std::string cmd = cli_binary() + " " + args + " " + stderr_to;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace pocketlora::test
