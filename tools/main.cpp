// `pocketlora` CLI: subcommands live in tools/cmd_*.cpp (and bench/*.cpp) and register themselves.
#include <cstdio>
#include <exception>
#include <memory>

#include "host/core/error.h"
#include "tools/command_registry.h"
#if POCKETLORA_HAS_VULKAN
#include "runtime/instance.h"
#endif
#if defined(__GLIBC__)  // (defined by the libc headers above)
#include <malloc.h>
#endif

namespace pocketlora::cli {
std::vector<CommandSpec>& command_specs() {
  static std::vector<CommandSpec> specs;
  return specs;
}
}  // namespace pocketlora::cli

namespace {
// Validation-layer messages are collected, not printed (runtime/instance.cpp): print them on the way out so a
// run with POCKETLORA_VALIDATION=1 shows them (tests/tools/test_cli.cpp fails on any).
int report_validation(int rc) {
#if POCKETLORA_HAS_VULKAN
  const auto n = pocketlora::vk::ValidationLog::global().count();
  if (n == 0) return rc;
  std::fprintf(stderr, "pocketlora: %llu Vulkan validation message(s):\n", static_cast<unsigned long long>(n));
  for (const auto& m : pocketlora::vk::ValidationLog::global().take()) std::fprintf(stderr, "  %s\n", m.c_str());
#endif
  return rc;
}
}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // A fixed mmap threshold: glibc otherwise raises it to the size of each large block freed (up to 32 MiB), after
  // which the base's per-linear conversion buffers come from the heap and their freed holes stay resident —
  // measured: loading 16 layers (dim 512, hidden 1536) left 138 MiB of RSS for a 31 MiB NF4 base, 34 MiB with
  // this (docs/MEMORY.md). Blocks of 1 MiB and more are mapped and given back on free. Android's allocator
  // returns large blocks by itself.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  using namespace pocketlora::cli;
  CLI::App app{"PocketLoRA: QLoRA fine-tuning of Llama-family models on (mobile) GPUs through Vulkan"};
  app.set_version_flag("--version", std::string("pocketlora ") + POCKETLORA_VERSION);
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, Action>> actions;
  for (auto& spec : command_specs()) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    actions.emplace_back(sub, spec.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return report_validation(action());
  } catch (const pocketlora::Error& e) {
    // The code names the category (format, io, device_limit, ...) for scripts; the message names the thing.
    std::fprintf(stderr, "pocketlora: error [%s]: %s\n", pocketlora::error_code_name(e.code()), e.what());
    return report_validation(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pocketlora: error: %s\n", e.what());
    return report_validation(1);
  }
  return 0;
}
