// Learning-rate schedules against values worked out by hand from transformers' lr_lambda formulas
// (get_*_schedule_with_warmup), not from the code under test.
#include <gtest/gtest.h>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/train/lr_schedule.h"

namespace pocketlora {
namespace {

using test::error_of;
using test::mentions;

constexpr double kLr = 2e-4;

TEST(LrSchedule, WarmupIsLinearFromZeroForEveryKind) {
  for (auto kind : {LrScheduleKind::Constant, LrScheduleKind::Linear, LrScheduleKind::Cosine}) {
    LrSchedule s(kind, kLr, /*warmup=*/10, /*total=*/110);
    EXPECT_EQ(s.lr(0), 0.0) << lr_schedule_name(kind);
    EXPECT_DOUBLE_EQ(s.lr(1), 2e-5) << lr_schedule_name(kind);
    EXPECT_DOUBLE_EQ(s.lr(5), 1e-4) << lr_schedule_name(kind);
    EXPECT_DOUBLE_EQ(s.lr(9), 1.8e-4) << lr_schedule_name(kind);
    EXPECT_DOUBLE_EQ(s.lr(10), 2e-4) << lr_schedule_name(kind);  // the peak: every kind is at factor 1
  }
}

TEST(LrSchedule, ConstantStaysAtPeak) {
  LrSchedule s(LrScheduleKind::Constant, kLr, 3, 10);
  EXPECT_DOUBLE_EQ(s.lr(3), kLr);
  EXPECT_DOUBLE_EQ(s.lr(10), kLr);
  EXPECT_DOUBLE_EQ(s.lr(1000), kLr);
}

TEST(LrSchedule, LinearDecaysToZeroAtTotal) {
  LrSchedule s(LrScheduleKind::Linear, kLr, 10, 110);  // 100 decay steps
  EXPECT_DOUBLE_EQ(s.lr(35), 1.5e-4);                  // 75 of 100 left
  EXPECT_DOUBLE_EQ(s.lr(60), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr(109), 2e-6);
  EXPECT_EQ(s.lr(110), 0.0);
  EXPECT_EQ(s.lr(150), 0.0);  // clamped past the end
}

TEST(LrSchedule, CosineIsHalfACosineToZero) {
  LrSchedule s(LrScheduleKind::Cosine, kLr, 10, 110);
  // progress 0.25: ½(1 + cos(π/4)) = ½ + √2/4 = 0.8535533905932737
  EXPECT_NEAR(s.lr(35), kLr * 0.8535533905932737, 1e-18);
  EXPECT_NEAR(s.lr(60), 1e-4, 1e-18);                       // progress ½: cos(π/2) = 0
  EXPECT_NEAR(s.lr(85), kLr * 0.1464466094067262, 1e-18);   // ½ − √2/4
  EXPECT_NEAR(s.lr(110), 0.0, 1e-18);
}

TEST(LrSchedule, NoWarmupStartsAtPeak) {
  LrSchedule lin(LrScheduleKind::Linear, kLr, 0, 4);
  EXPECT_DOUBLE_EQ(lin.lr(0), kLr);
  EXPECT_DOUBLE_EQ(lin.lr(1), 1.5e-4);
  EXPECT_DOUBLE_EQ(lin.lr(3), 5e-5);
  LrSchedule cos(LrScheduleKind::Cosine, kLr, 0, 4);
  EXPECT_DOUBLE_EQ(cos.lr(0), kLr);
  EXPECT_NEAR(cos.lr(2), 1e-4, 1e-18);
}

TEST(LrSchedule, WarmupLongerThanTotalFollowsTransformers) {
  // total − warmup < 1 is clamped to 1 (max(1, ...)); the decay then happens in one step.
  LrSchedule s(LrScheduleKind::Linear, kLr, 4, 4);
  EXPECT_DOUBLE_EQ(s.lr(2), 1e-4);
  EXPECT_EQ(s.lr(4), 0.0);
}

TEST(LrSchedule, ParsesNames) {
  EXPECT_EQ(parse_lr_schedule("constant"), LrScheduleKind::Constant);
  EXPECT_EQ(parse_lr_schedule("linear"), LrScheduleKind::Linear);
  EXPECT_EQ(parse_lr_schedule("cosine"), LrScheduleKind::Cosine);
  for (auto kind : {LrScheduleKind::Constant, LrScheduleKind::Linear, LrScheduleKind::Cosine})
    EXPECT_EQ(parse_lr_schedule(lr_schedule_name(kind)), kind);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { parse_lr_schedule("cosine_restarts"); }),
                       {"cosine_restarts", "constant, linear or cosine"}));
}

TEST(LrSchedule, RefusesBadParameters) {
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { LrSchedule(LrScheduleKind::Linear, 0.0, 0, 10); }),
                       {"learning rate"}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { LrSchedule(LrScheduleKind::Linear, kLr, -1, 10); }),
                       {"warmup", "-1"}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([] { LrSchedule(LrScheduleKind::Linear, kLr, 0, 0); }),
                       {"total steps", ">= 1"}));
  LrSchedule s(LrScheduleKind::Constant, kLr, 0, 10);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { (void)s.lr(-1); }), {"step -1"}));
}

}  // namespace
}  // namespace pocketlora
