#pragma once
// Each tools/cmd_*.cpp registers its subcommand with a file-scope `static CommandRegistration`, so adding a
// command never touches main.cpp. The setup function adds options to `sub` and returns the action to run.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pocketlora::cli {

using Action = std::function<int()>;
using Setup = std::function<Action(CLI::App& sub)>;

struct CommandSpec {
  std::string name, description;
  Setup setup;
};

std::vector<CommandSpec>& command_specs();

struct CommandRegistration {
  CommandRegistration(std::string name, std::string description, Setup setup) {
    command_specs().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace pocketlora::cli
