#pragma once
// The tiny stories260K jobs the job-queue tests queue (a few steps of 2 windows of 32 tokens on the CPU backend,
// a checkpoint every step), and how they compare a finished job with the same run done directly.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/test_data.h"
#include "host/jobs/job_queue.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"

namespace pocketlora::test {

inline TrainOptions tiny_job(std::uint64_t seed = 42, std::int64_t steps = 4) {
  TrainOptions o;
  o.model = data_path("models/stories260K/stories260K.bin");
  o.data.path = data_path("datasets/tinystories_sample.txt");
  o.data.seq_len = 32;
  o.data.seed = seed;
  o.seed = seed;
  o.steps = steps;
  o.batch = 2;
  o.save_every = 1;
  o.eval_every = steps;
  o.backend = BackendKind::Cpu;
  o.optimizer.lr = 1e-3f;
  return o;
}

inline std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The run directories end with the same adapter, bit for bit: the latest checkpoint's tensors and the PEFT file.
inline void expect_same_adapter(const std::filesystem::path& want_dir, const std::filesystem::path& got_dir) {
  const auto want = read_checkpoint_dir(resolve_resume(want_dir)).adapter;
  const auto got = read_checkpoint_dir(resolve_resume(got_dir)).adapter;
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].first, got[i].first);
    ASSERT_EQ(want[i].second.nbytes(), got[i].second.nbytes()) << want[i].first;
    EXPECT_EQ(std::memcmp(want[i].second.raw(), got[i].second.raw(), want[i].second.nbytes()), 0) << want[i].first;
  }
  const std::string peft_want = file_bytes(want_dir / "adapter_model.safetensors");
  EXPECT_FALSE(peft_want.empty());
  EXPECT_TRUE(peft_want == file_bytes(got_dir / "adapter_model.safetensors")) << got_dir;
}

// How often the job's history says it entered `state`.
inline int entries(const JobRecord& r, JobState state) {
  int n = 0;
  for (const auto& e : r.history) n += e.state == job_state_name(state);
  return n;
}

}  // namespace pocketlora::test
