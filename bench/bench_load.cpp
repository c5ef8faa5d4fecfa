// `pocketlora bench load`: host memory and time of loading a base model and uploading it to a backend, per base
// format (docs/MEMORY.md). Synthetic checkpoints in a 1B model's shapes (bench/synthetic_checkpoint.h) are written
// once under --dir; each (format, backend) then runs `pocketlora forward --quant nf4 --json` on a few tokens as a
// child process, so each figure is a fresh process's own: the peak RSS from wait4 (ru_maxrss, whatever the
// binary), and, from the child's JSON, load + upload time and its RSS after upload split into anonymous and file
// pages. --binary runs another build's pocketlora on the same files (e.g. one from before a change) beside this
// one's.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "bench/synthetic_checkpoint.h"

namespace pocketlora::bench {
namespace {
namespace fs = std::filesystem;

struct LoadBenchArgs {
  std::string model = "llama-3.2-1b";
  int layers = 2;
  std::int64_t vocab = 0;  // 0: the model's
  std::string formats = "safetensors-f32,safetensors-f16,gguf-q8_0,gguf-q4_0,bnb4bit,llama2c";
  std::string backends = "cpu,vulkan";
  std::string dir = "/tmp/pocketlora-bench-load";
  std::vector<std::string> binaries;  // label=path; this binary is always run, as "this"
  std::string out = "bench-load.json";
};

struct ChildRun {
  int status = -1;
  std::uint64_t max_rss_bytes = 0;
  std::string out;
};

// Runs argv with stdout captured; ru_maxrss of exactly that process (wait4).
ChildRun run_child(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  ChildRun r;
  char buf[65536];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  struct rusage ru {};
  int status = 0;
  if (wait4(pid, &status, 0, &ru) != pid) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.max_rss_bytes = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
  return r;
}

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("bench load: cannot find this binary (/proc/self/exe): " + ec.message());
  return p.string();
}

int run(const LoadBenchArgs& a) {
  const SyntheticSpec* spec = synthetic_spec(a.model);
  if (!spec) throw std::runtime_error("bench load: unknown model '" + a.model + "' (tinyllama-1.1b, llama-3.2-1b)");
  const std::int64_t vocab = a.vocab > 0 ? a.vocab : spec->vocab;
  std::vector<std::pair<std::string, std::string>> bins = {{"this", self_exe()}};
  for (const auto& b : a.binaries) {
    const auto eq = b.find('=');
    if (eq == std::string::npos) throw std::runtime_error("--binary '" + b + "': expected LABEL=PATH");
    bins.emplace_back(b.substr(0, eq), b.substr(eq + 1));
  }
  fs::create_directories(a.dir);
  Table table({"format", "file MiB", "backend", "binary", "peak RSS MiB", "anon after MiB", "file after MiB",
               "backend MiB", "load+upload s", "upload s"});
  nlohmann::json results = nlohmann::json::array();
  for (const auto& format : split_csv(a.formats)) {
    const fs::path path = write_synthetic_checkpoint(*spec, a.layers, vocab, format, a.dir);
    std::uint64_t file_bytes = 0;
    if (fs::is_directory(path)) {
      for (const auto& e : fs::directory_iterator(path))
        if (e.path().extension() == ".safetensors") file_bytes += fs::file_size(e.path());
    } else {
      file_bytes = fs::file_size(path);
    }
    for (const auto& backend : split_csv(a.backends))
      for (const auto& [label, bin] : bins) {
        fmt::print("  {} on {} ({})...\n", format, backend, label);
        std::fflush(stdout);
        const ChildRun r = run_child({bin, "forward", "--model", path.string(), "--quant", "nf4", "--backend", backend,
                                      "--tokens", "1,2,3,4", "--top-k", "1", "--json"});
        nlohmann::json j{{"format", format},     {"path", path.string()}, {"file_bytes", file_bytes},
                         {"backend", backend},   {"binary", label},       {"exit_status", r.status},
                         {"peak_rss_bytes", r.max_rss_bytes}};
        std::vector<std::string> row = {format, mib(static_cast<double>(file_bytes)), backend, label,
                                        mib(static_cast<double>(r.max_rss_bytes))};
        const auto brace = r.out.find('{');
        if (r.status == 0 && brace != std::string::npos) {
          const nlohmann::json f = nlohmann::json::parse(r.out.substr(brace));
          j["load_ms"] = f.at("load_ms");  // load + upload, as `forward` reports it
          row.push_back(f.contains("host_memory") ? mib(f["host_memory"]["rss_anon_after_upload_bytes"].get<double>()) : "-");
          row.push_back(f.contains("host_memory") ? mib(f["host_memory"]["rss_file_after_upload_bytes"].get<double>()) : "-");
          row.push_back(f.contains("host_memory") ? mib(f["host_memory"]["backend_bytes"].get<double>()) : "-");
          row.push_back(fmt::format("{:.2f}", f["load_ms"].get<double>() / 1000));
          row.push_back(f.contains("upload_ms") ? fmt::format("{:.2f}", f["upload_ms"].get<double>() / 1000) : "-");
          if (f.contains("host_memory")) j["host_memory"] = f["host_memory"];
          if (f.contains("upload_ms")) j["upload_ms"] = f["upload_ms"];
        } else {
          row.push_back(fmt::format("failed (exit {})", r.status));
        }
        fmt::print("    peak RSS {} MiB{}\n", row[4], row.size() > 8 ? ", load + upload " + row[8] + " s" : "");
        std::fflush(stdout);
        table.row(row);
        results.push_back(j);
      }
  }
  fmt::print(
      "\nLoading + uploading a synthetic {} ({} of {} layers, vocab {}) with an NF4 base; peak RSS = the child "
      "process's ru_maxrss (anonymous + mapped file pages while resident); anon/file after = its resident set after "
      "the upload\n",
      a.model, a.layers, spec->n_layers, vocab);
  table.print();
  write_json(a.out, {{"benchmark", "load"},
                     {"model", a.model},
                     {"layers", a.layers},
                     {"vocab", vocab},
                     {"results", results}});
  return 0;
}

BenchRegistration register_bench_load("load",
                      "Host peak RSS and time of loading + uploading an NF4 base, per checkpoint format and backend",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<LoadBenchArgs>();
                        sub.add_option("--model", a->model, "tinyllama-1.1b or llama-3.2-1b (shapes)")
                            ->capture_default_str();
                        sub.add_option("--layers", a->layers, "Layers written")
                            ->check(CLI::PositiveNumber)
                            ->capture_default_str();
                        sub.add_option("--vocab", a->vocab, "Vocabulary (0: the model's)")
                            ->check(CLI::NonNegativeNumber)
                            ->capture_default_str();
                        sub.add_option("--formats", a->formats, "Comma list of checkpoint formats")
                            ->capture_default_str();
                        sub.add_option("--backends", a->backends, "Comma list among cpu,vulkan")->capture_default_str();
                        sub.add_option("--dir", a->dir, "Where the synthetic checkpoints are written (kept, reused)")
                            ->capture_default_str();
                        sub.add_option("--binary", a->binaries,
                                       "LABEL=PATH of another pocketlora to run on the same files (repeatable)");
                        sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
