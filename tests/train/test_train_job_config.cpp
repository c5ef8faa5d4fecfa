// parse_train_job_config (host/train/train_job_config.h): the C API's JSON form of `pocketlora train`'s options.
#include <gtest/gtest.h>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/train/train_job_config.h"

namespace pocketlora {
namespace {

using test::error_of;
using test::mentions;

TrainJobConfig parse(const std::string& s) { return parse_train_job_config(nlohmann::json::parse(s), "job.json"); }

TEST(TrainJobConfig, ReadsEveryFieldAsTheCommandLineDoes) {
  const TrainJobConfig c = parse(R"({"data": "d.txt", "out": "run", "resume": "run", "format": "text",
      "rank": 4, "alpha": 8, "dropout": 0.1, "rslora": true, "targets": "q,v", "lr": 0.001, "schedule": "cosine",
      "warmup": 3, "steps": 20, "epochs": 2, "batch": 3, "grad_accum": 2, "seq_len": 64, "optimizer": "lion",
      "weight_decay": 0.01, "max_grad_norm": 0.5, "max_memory": "1.5G", "checkpointing": "on",
      "embedding_dtype": "f16", "precision": "f32", "quant": "none", "val_fraction": 0.1, "val_windows": 8,
      "eval_every": 5, "save_every": 10, "keep": 3, "seed": 7})");
  const TrainOptions& o = c.options;
  EXPECT_EQ(o.data.path, "d.txt");
  EXPECT_EQ(o.out, "run");
  EXPECT_EQ(*o.resume, "run");
  EXPECT_EQ(o.data.format, DataFormat::Text);
  EXPECT_EQ(o.lora.rank, 4);
  EXPECT_FLOAT_EQ(o.lora.alpha, 8);
  EXPECT_FLOAT_EQ(o.lora.dropout, 0.1f);
  EXPECT_TRUE(o.lora.rslora);
  EXPECT_EQ(o.lora.targets, (std::vector<LoraTarget>{LoraTarget::Q, LoraTarget::V}));
  EXPECT_FLOAT_EQ(o.optimizer.lr, 0.001f);
  EXPECT_EQ(o.schedule, LrScheduleKind::Cosine);
  EXPECT_EQ(o.warmup_steps, 3);
  EXPECT_EQ(o.steps, 20);
  EXPECT_EQ(o.epochs, 2);
  EXPECT_EQ(o.batch, 3);
  EXPECT_EQ(o.grad_accum, 2);
  EXPECT_EQ(o.data.seq_len, 64);
  EXPECT_EQ(o.optimizer.kind, OptimizerKind::Lion);
  EXPECT_FLOAT_EQ(o.optimizer.beta2, 0.99f);  // Lion's default, as `pocketlora train --optimizer lion`
  EXPECT_FLOAT_EQ(o.optimizer.weight_decay, 0.01f);
  EXPECT_FLOAT_EQ(o.optimizer.max_grad_norm, 0.5f);
  EXPECT_EQ(o.max_memory, 1536ull * 1024 * 1024);
  EXPECT_EQ(o.checkpointing, CheckpointingMode::On);
  EXPECT_EQ(o.embedding_dtype, TableDtype::F16);
  EXPECT_EQ(o.precision, Precision::F32);
  EXPECT_EQ(o.quant, BaseQuant::None);
  EXPECT_DOUBLE_EQ(o.data.validation_fraction, 0.1);
  EXPECT_EQ(o.data.max_validation_windows, 8);
  EXPECT_EQ(o.eval_every, 5);
  EXPECT_EQ(o.save_every, 10);
  EXPECT_EQ(o.keep_checkpoints, 3);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.data.seed, 7u);
  EXPECT_FALSE(c.policy);
}

TEST(TrainJobConfig, DefaultsAreTheCommandLinesAndPolicyTurnsThePolicyOn) {
  const TrainJobConfig c = parse(R"({"data": "d.txt", "out": "run"})");
  EXPECT_EQ(c.options.quant, BaseQuant::Nf4);
  EXPECT_FLOAT_EQ(c.options.optimizer.lr, 2e-4f);
  EXPECT_EQ(c.options.batch, 4);
  EXPECT_EQ(c.options.max_memory, 0u);
  EXPECT_FALSE(c.policy);
  EXPECT_TRUE(parse(R"({"data": "d", "out": "o", "policy": true})").policy);
  EXPECT_FALSE(parse(R"({"data": "d", "out": "o", "policy": false})").policy);
  const auto p = parse(R"({"data": "d", "out": "o", "policy": {"poll_seconds": 2, "require_charging": false}})").policy;
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->poll_seconds, 2);
  EXPECT_FALSE(p->require_charging);
  EXPECT_EQ(parse(R"({"data": "d", "out": "o", "max_memory": 1048576})").options.max_memory, 1048576u);
}

TEST(TrainJobConfig, RefusesBadConfigsNamingTheField) {
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"out": "o"})"); }), {"job.json", "missing field 'data'"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "learning_rate": 1})"); }),
                       {"job.json", "unknown field 'learning_rate'"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "rank": "8"})"); }),
                       {"field 'rank'", "expected integer"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "optimizer": "adamx"})"); }),
                       {"field 'optimizer'", "adamx", "adamw"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "max_memory": "12X"})"); }),
                       {"max_memory", "12X"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "max_memory": -5})"); }), {"max_memory"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "keep": 0})"); }), {"field 'keep'"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "seed": -1})"); }), {"field 'seed'"}));
  EXPECT_TRUE(mentions(error_of<Error>([] { parse(R"({"data": "d", "out": "o", "policy": {"poll_secs": 1}})"); }),
                       {"policy", "poll_secs"}));
  EXPECT_THROW(parse(R"({"data": "d", "out": "o", "checkpointing": "maybe"})"), InvalidArgument);
  EXPECT_THROW(parse("[1]"), FormatError);
}

}  // namespace
}  // namespace pocketlora
