#include "bench/bench_registry.h"

namespace pocketlora::bench {

std::vector<cli::CommandSpec>& bench_specs() {
  static std::vector<cli::CommandSpec> specs;
  return specs;
}

namespace {
cli::CommandRegistration register_bench_main("bench", "Benchmarks (print a table, write JSON)", [](CLI::App& sub) {
  sub.require_subcommand(1);
  auto actions = std::make_shared<std::vector<std::pair<CLI::App*, cli::Action>>>();
  for (auto& spec : bench_specs()) {
    CLI::App* b = sub.add_subcommand(spec.name, spec.description);
    actions->emplace_back(b, spec.setup(*b));
  }
  return cli::Action([actions]() -> int {
    for (auto& [b, action] : *actions)
      if (b->parsed()) return action();
    return 1;
  });
});
}  // namespace

}  // namespace pocketlora::bench
