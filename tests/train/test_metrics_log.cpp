// Metrics JSONL: one whole record per line, non-finite values as null, a torn last line (kill mid-write) skipped,
// and a resumed run keeping the history up to its checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/train/metrics_log.h"
#include "host/util/read_file.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::mentions;
using test::TempDir;

StepMetrics record(std::int64_t step, double loss) {
  StepMetrics m;
  m.step = step, m.loss = loss, m.lr = 2e-4, m.grad_norm = 0.5, m.tokens_per_s = 1234.5, m.memory_bytes = 1ull << 33;
  return m;
}

TEST(MetricsLog, OneJsonRecordPerLineReadableWhileOpen) {
  TempDir tmp;
  const fs::path p = tmp / "metrics.jsonl";
  MetricsLog log(p);
  log.append(record(1, 2.5));
  StepMetrics skipped = record(2, std::nan(""));
  skipped.skipped = true;
  skipped.grad_norm = INFINITY;
  log.append(skipped);
  StepMetrics val = record(3, 2.25);
  val.val_loss = 2.375;
  log.append(val);
  // Already on disk, without closing the log: a killed run keeps it.
  EXPECT_EQ(read_file_text(p),
            "{\"grad_norm\":0.5,\"loss\":2.5,\"lr\":0.0002,\"memory_bytes\":8589934592,\"skipped\":false,\"step\":1,"
            "\"tokens_per_s\":1234.5}\n"
            "{\"grad_norm\":null,\"loss\":null,\"lr\":0.0002,\"memory_bytes\":8589934592,\"skipped\":true,\"step\":2,"
            "\"tokens_per_s\":1234.5}\n"
            "{\"grad_norm\":0.5,\"loss\":2.25,\"lr\":0.0002,\"memory_bytes\":8589934592,\"skipped\":false,\"step\":3,"
            "\"tokens_per_s\":1234.5,\"val_loss\":2.375}\n");
  const auto r = read_metrics_log(p);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].loss, 2.5);
  EXPECT_EQ(r[0].memory_bytes, 1ull << 33);
  EXPECT_FALSE(r[0].val_loss);
  EXPECT_TRUE(std::isnan(r[1].loss));
  EXPECT_TRUE(r[1].skipped);
  EXPECT_EQ(r[2].val_loss, 2.375);
}

TEST(MetricsLog, TornLastLineIsSkippedAndResumeKeepsHistoryToTheCheckpoint) {
  TempDir tmp;
  const fs::path p = tmp / "metrics.jsonl";
  {
    MetricsLog log(p);
    for (int s = 1; s <= 5; ++s) log.append(record(s, 3.0 - 0.1 * s));
  }
  std::ofstream(p, std::ios::app) << "{\"grad_norm\":0.5,\"lo";  // killed mid-record
  EXPECT_EQ(read_metrics_log(p).size(), 5u);
  {
    MetricsLog resumed(p, /*keep_through_step=*/3);  // the checkpoint it resumes from was taken at step 3
    resumed.append(record(4, 1.0));
  }
  const auto r = read_metrics_log(p);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[2].step, 3);
  EXPECT_EQ(r[3].step, 4);
  EXPECT_EQ(r[3].loss, 1.0);
  { MetricsLog fresh(p); }
  EXPECT_EQ(read_file_text(p), "");
}

TEST(MetricsLog, MalformedLineIsNamed) {
  TempDir tmp;
  const fs::path p = tmp / "metrics.jsonl";
  std::ofstream(p) << "{\"step\":1,\"loss\":1,\"lr\":0,\"grad_norm\":0,\"tokens_per_s\":0,\"memory_bytes\":0}\n"
                   << "garbage\n"
                   << "{\"step\":3}\n";
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_metrics_log(p); }), {"metrics.jsonl:2", "not a JSON record"}));
  std::ofstream(p) << "{\"step\":\"one\"}\n";
  EXPECT_TRUE(mentions(error_of<FormatError>([&] { read_metrics_log(p); }), {"metrics.jsonl:1", "'step'"}));
}

}  // namespace
}  // namespace pocketlora
