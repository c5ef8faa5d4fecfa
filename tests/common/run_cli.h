#pragma once
// Runs the built `pocketlora` binary as a user would, for the CLI tests.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

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

// Starts the CLI with `args` split on spaces (the tests' paths have none), its output to /dev/null, and returns its
// pid (-1 if fork failed) for tests that kill it at chosen moments.
inline pid_t spawn_cli(const std::string& args) {
  std::vector<std::string> words{cli_binary()};
  for (std::size_t b = 0, e; b < args.size(); b = e + 1) {
    e = args.find(' ', b);
    if (e == std::string::npos) e = args.size();
    if (e > b) words.push_back(args.substr(b, e - b));
  }
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return child;
}

}  // namespace pocketlora::test
