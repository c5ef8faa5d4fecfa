#pragma once
// The small stories260K training run the trainer tests share (6 steps of 2 x 2 windows of 32 tokens on the CPU
// backend, checkpoints every 3 steps), and the adapter a run directory ends with.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/test_data.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"

namespace pocketlora::test {

inline TrainOptions small_run(const std::filesystem::path& out) {
  TrainOptions o;
  o.model = data_path("models/stories260K/stories260K.bin");
  o.data.path = data_path("datasets/tinystories_sample.txt");
  o.data.seq_len = 32;
  o.data.validation_fraction = 0.2;
  o.out = out;
  o.steps = 6;
  o.batch = 2;
  o.grad_accum = 2;
  o.save_every = 3;
  o.eval_every = 3;
  o.backend = BackendKind::Cpu;
  o.optimizer.lr = 1e-3f;
  o.schedule = LrScheduleKind::Cosine;
  o.warmup_steps = 2;
  return o;
}

inline std::vector<std::pair<std::string, Tensor>> final_adapter(const std::filesystem::path& run_dir) {
  return read_checkpoint_dir(resolve_resume(run_dir)).adapter;
}

}  // namespace pocketlora::test
