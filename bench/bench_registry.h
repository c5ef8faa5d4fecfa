#pragma once
// `pocketlora bench <name>`: each bench/*.cpp registers one benchmark with a file-scope BenchRegistration.
#include "tools/command_registry.h"

namespace pocketlora::bench {

std::vector<cli::CommandSpec>& bench_specs();

struct BenchRegistration {
  BenchRegistration(std::string name, std::string description, cli::Setup setup) {
    bench_specs().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace pocketlora::bench
