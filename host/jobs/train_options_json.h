#pragma once
// TrainOptions as JSON, complete and invertible: how a queued job keeps the run it will do (the job queue's
// files; later the C API and `pocketlora serve`, which take a job as JSON). Unlike train_config_json (what a
// checkpoint records to check a resume against), every field the trainer reads is here, so parsing what was
// written gives the same options bit for bit (floats round-trip exactly through JSON numbers).
//
// Left out on purpose: `out` and `resume` (the queue owns the run directory and decides when to resume) and
// `policy` (the runner's, shared by every job). Parsing is strict: a missing or unknown field, a wrong type or a
// value the option parsers refuse is a FormatError naming the origin (file) and the field ("train.lora.rank").
#include <nlohmann/json.hpp>
#include <string>

#include "host/train/trainer.h"

namespace pocketlora {

nlohmann::json train_options_json(const TrainOptions& o);
TrainOptions parse_train_options_json(const nlohmann::json& j, const std::string& origin);

}  // namespace pocketlora
