#pragma once
// Training checkpoints: everything a run needs to continue bit for bit, in one directory written atomically.
//
//   checkpoint-{step}/
//     state.safetensors   adapter tensors as "adapter/<name>" (names "layers.{i}.{q|k|v|o|gate|up|down}.{A|B}",
//                         A [r, in], B [out, r]) and optimizer state as "optimizer/<name>", stored exactly (dtype
//                         as given)
//     checkpoint.json     format + format_version, step (optimizer steps taken), data_position {epoch, index},
//                         rng_state (uint64 words), base_model_fingerprint (host/train/base_fingerprint.h), config
//                         (the full run config), the tensor names in order and the SHA-256 of state.safetensors
//                         (so a truncated or bit-flipped file is refused, not trained on)
//
// A run's --out directory holds checkpoint-{step}/ directories plus `latest_checkpoint` (a one-line file naming
// the newest complete one, replaced atomically after it is in place); the oldest are pruned to keep the last K.
// Each checkpoint is built in a temp dir beside it ("checkpoint-{step}.tmp.<pid>"), fsynced and renamed
// (AtomicDirWriter), so a kill at any point leaves the previous checkpoints intact and never a partial one under a
// checkpoint name; temp dirs that killed runs left behind are ignored by resolve_resume and removed by the next
// save_checkpoint.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/core/tensor.h"

namespace pocketlora {

inline constexpr std::int64_t kCheckpointFormatVersion = 1;

// Where the data loader stands: the next example to feed is `index` of epoch `epoch` (both 0-based).
struct DataPosition {
  std::int64_t epoch = 0;
  std::int64_t index = 0;
};

struct Checkpoint {
  std::int64_t step = 0;  // optimizer steps taken
  DataPosition data;
  std::vector<std::uint64_t> rng_state;
  std::string base_fingerprint;
  nlohmann::json config = nlohmann::json::object();
  std::vector<std::pair<std::string, Tensor>> adapter;
  std::vector<std::pair<std::string, Tensor>> optimizer;
};

// What a resuming run requires of a checkpoint. `must_match` lists JSON pointers ("/lora/rank") into the config
// whose values must be equal in both (a field absent from both matches).
struct CheckpointExpectation {
  std::string base_fingerprint;
  nlohmann::json config = nlohmann::json::object();
  std::vector<std::string> must_match;
};

// One checkpoint directory, written atomically (replacing `dir` if it exists).
void write_checkpoint_dir(const std::filesystem::path& dir, const Checkpoint& ckpt);
// Reads and verifies one checkpoint directory (format, version, tensor file digest and contents); tensors are
// owned copies. FormatError/IoError naming the file and the field, with expected vs found.
Checkpoint read_checkpoint_dir(const std::filesystem::path& dir);
// InvalidArgument naming the field (base_model_fingerprint or the config pointer), expected (this run) and found
// (the checkpoint) when the checkpoint does not belong to this run.
void check_checkpoint_compatible(const Checkpoint& ckpt, const std::filesystem::path& dir,
                                 const CheckpointExpectation& expected);
Checkpoint load_checkpoint(const std::filesystem::path& dir, const CheckpointExpectation& expected);

// A run directory. save_checkpoint writes run_dir/checkpoint-{step}, points `latest_checkpoint` at it, keeps the
// newest `keep_last` (>= 1) checkpoints, removes those past `step` (left by a continuation this run replaced
// when it resumed from an earlier checkpoint) and leftovers of killed writers; returns the checkpoint's path.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, const Checkpoint& ckpt, int keep_last);
// The complete checkpoints of a run directory (those with checkpoint.json), oldest first.
std::vector<std::pair<std::int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& run_dir);
// --resume PATH: a checkpoint directory itself, or a run directory meaning its latest complete checkpoint (the one
// `latest_checkpoint` names, else the highest step present). IoError when there is none.
std::filesystem::path resolve_resume(const std::filesystem::path& path);

}  // namespace pocketlora
