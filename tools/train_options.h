#pragma once
// The options of one training run as the CLI spells them, shared by `pocketlora train` and `pocketlora schedule
// add` (which queues the same run for later): one set of flags, defaults and help texts, one conversion into
// TrainOptions. The run directory, --resume and the device policy stay with each command.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "host/train/trainer.h"

namespace pocketlora::cli {

struct TrainArgs {
  std::string model, data, tokenizer;
  std::string format = "auto", tmpl, backend = "auto", optimizer = "adamw", schedule = "linear", quant = "nf4";
  std::string targets = "all", max_memory, checkpointing = "auto", embedding_dtype = "auto", precision = "auto";
  std::int64_t rank = 8, steps = 0, epochs = 1, batch = 4, grad_accum = 1, seq_len = 256, warmup = 0;
  std::int64_t eval_every = 0, save_every = 0;
  float alpha = 16, dropout = 0, lr = 2e-4f, weight_decay = 0, max_grad_norm = 1.0f;
  double val_fraction = 0.05;
  std::int64_t val_windows = 64;
  bool rslora = false;
  int device = -1, keep = 2;
  std::uint64_t seed = 42;
};

// Every flag of TrainArgs on `sub` (--model and --data required).
void add_train_options(CLI::App& sub, TrainArgs& a);
// TrainOptions from the flags; InvalidArgument naming the flag for a value no parser accepts. `out`, `resume` and
// `policy` are left unset.
TrainOptions train_options_from_args(const TrainArgs& a);

// --policy FILE and/or --sensors SPEC: either turns the device policy on (default thresholds without --policy,
// sysfs sensors without --sensors); neither: nullopt.
void add_policy_options(CLI::App& sub, std::string& policy, std::string& sensors);
std::optional<TrainPolicy> parse_train_policy(const std::string& policy, const std::string& sensors);

}  // namespace pocketlora::cli
