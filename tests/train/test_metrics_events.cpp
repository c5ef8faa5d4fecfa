// Event records in metrics.jsonl (MetricsLog::append_event, e.g. the device policy's transitions): the step
// reader skips them, the event reader returns only them, and a resume keeps those up to its checkpoint's step.
#include <gtest/gtest.h>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/train/metrics_log.h"

namespace pocketlora {
namespace {

using nlohmann::json;

StepMetrics step(std::int64_t n) {
  StepMetrics m;
  m.step = n;
  m.loss = 2.0;
  return m;
}

TEST(MetricsEvents, StepAndEventRecordsAreReadApartAndResumeKeepsEventsToItsStep) {
  test::TempDir tmp;
  const auto path = tmp / "metrics.jsonl";
  {
    MetricsLog log(path);
    log.append_event({{"event", "policy"}, {"step", 0}, {"to", "training"}});
    log.append(step(1));
    log.append(step(2));
    log.append_event({{"event", "policy"}, {"step", 2}, {"to", "cooldown-pause"}});
    log.append(step(3));
    log.append_event({{"event", "policy"}, {"step", 3}, {"to", "idle"}});
  }
  EXPECT_EQ(read_metrics_log(path).size(), 3u);
  EXPECT_EQ(read_metrics_events(path).size(), 3u);
  { MetricsLog resumed(path, 2); }
  const auto steps = read_metrics_log(path);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[1].step, 2);
  const auto events = read_metrics_events(path);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["to"], "training");
  EXPECT_EQ(events[1]["to"], "cooldown-pause");
}

TEST(MetricsEvents, AnEventNeedsANameAndAStep) {
  test::TempDir tmp;
  MetricsLog log(tmp / "metrics.jsonl");
  EXPECT_TRUE(test::mentions(test::error_of<FormatError>([&] { log.append_event({{"event", "policy"}}); }),
                             {"metrics.jsonl", "'step'"}));
  EXPECT_TRUE(test::mentions(test::error_of<FormatError>([&] { log.append_event({{"step", 1}}); }),
                             {"metrics.jsonl", "'event'"}));
}

}  // namespace
}  // namespace pocketlora
