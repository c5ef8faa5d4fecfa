#pragma once
// A training run described as one JSON object, for callers that have no command line (the C API's
// pl_train_job_create): the options of `pocketlora train`, each flag's name with '_' for '-' ("grad_accum",
// "seq_len", "max_memory"), the same defaults and the same checks. What the caller holds already is not in it: the
// model, its tokenizer, the backend and device (the C API's pl_model and pl_runtime). docs/C_API.md has the table.
//
//   {"data": "train.jsonl", "out": "run", "steps": 100, "rank": 8, "lr": 2e-4, "policy": {"poll_seconds": 5}}
//
// "policy": true (default thresholds) or a policy object (docs/POLICY.md) turns the device policy on; the caller
// supplies the sensors. An unknown field, a wrong type or a bad value is an error naming `origin` and the field.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "host/policy/policy_config.h"
#include "host/train/trainer.h"

namespace pocketlora {

struct TrainJobConfig {
  TrainOptions options;               // model, tokenizer, backend, device, policy and control left to the caller
  std::optional<PolicyConfig> policy;  // present: train under the device policy with these thresholds
};

TrainJobConfig parse_train_job_config(const nlohmann::json& j, const std::string& origin);

}  // namespace pocketlora
