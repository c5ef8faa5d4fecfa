// What the adapter store learns from a `train --out` directory: the newest checkpoint's base fingerprint and
// quantization, and the metrics up to that checkpoint's step (not the steps a killed run logged after it).
#include <gtest/gtest.h>

#include "common/test_data.h"
#include "host/train/adapter_origin.h"
#include "host/train/checkpoint.h"
#include "host/train/metrics_log.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;

void write_metrics(const fs::path& run) {
  MetricsLog log(run / "metrics.jsonl");
  for (std::int64_t step = 1; step <= 5; ++step) {
    StepMetrics m;
    m.step = step;
    m.loss = 4.0 - 0.25 * double(step);                        // 3.75, 3.5, 3.25, 3.0, 2.75
    if (step % 2 == 0) m.val_loss = 5.0 - 0.5 * double(step);  // 4.0 at step 2, 3.0 at step 4
    log.append(m);
  }
}

Checkpoint checkpoint_at(std::int64_t step, const std::string& fingerprint) {
  Checkpoint c;
  c.step = step;
  c.base_fingerprint = fingerprint;
  c.config = {{"quant", "nf4"}};
  c.adapter = {{"layers.0.q.A", Tensor::zeros({2, 4})}};
  return c;
}

TEST(AdapterOrigin, CheckpointFingerprintAndMetricsUpToItsStep) {
  test::TempDir tmp;
  write_metrics(tmp.path());
  save_checkpoint(tmp.path(), checkpoint_at(2, "sampled-sha256-v1:old"), 2);
  save_checkpoint(tmp.path(), checkpoint_at(3, "sampled-sha256-v1:new"), 2);
  const AdapterOrigin o = read_adapter_origin(tmp.path());
  EXPECT_EQ(o.base_fingerprint, "sampled-sha256-v1:new");
  EXPECT_EQ(o.base_quant, "nf4");
  EXPECT_EQ(o.steps, 3);
  EXPECT_EQ(o.final_loss, 3.25);     // step 3, not the logged step 5
  EXPECT_EQ(o.final_val_loss, 4.0);  // step 2's; step 4's came after the checkpoint
}

TEST(AdapterOrigin, MetricsAloneAndNothingAtAll) {
  test::TempDir tmp;
  const AdapterOrigin none = read_adapter_origin(tmp.path());
  EXPECT_TRUE(none.base_fingerprint.empty());
  EXPECT_TRUE(none.base_quant.empty());
  EXPECT_FALSE(none.steps || none.final_loss || none.final_val_loss);

  write_metrics(tmp.path());
  const AdapterOrigin o = read_adapter_origin(tmp.path());
  EXPECT_TRUE(o.base_fingerprint.empty());
  EXPECT_EQ(o.steps, 5);
  EXPECT_EQ(o.final_loss, 2.75);
  EXPECT_EQ(o.final_val_loss, 3.0);
}

}  // namespace
}  // namespace pocketlora
