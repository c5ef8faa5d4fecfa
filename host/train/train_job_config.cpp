#include "host/train/train_job_config.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "host/core/error.h"
#include "host/data/dataset.h"
#include "host/util/byte_size.h"
#include "host/util/json_field.h"

namespace pocketlora {
namespace {

// Every field the config may hold: a typo ("learning_rate") is refused, not silently ignored.
const std::set<std::string> kFields = {
    "data",         "out",          "resume",     "format",        "template",    "rank",        "alpha",
    "dropout",      "rslora",       "targets",    "lr",            "schedule",    "warmup",      "steps",
    "epochs",       "batch",        "grad_accum", "seq_len",       "optimizer",   "weight_decay", "max_grad_norm",
    "max_memory",   "checkpointing", "embedding_dtype", "precision", "quant",      "val_fraction", "val_windows",
    "eval_every",   "save_every",   "keep",       "seed",          "policy"};

// A word field through the option's own parser, its error prefixed with the config's origin and the field.
template <typename E, typename Parse>
E parse_choice(const std::string& value, const std::string& field, const std::string& origin, Parse parse) {
  try {
    return parse(value);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("{}: field '{}': {}", origin, field, e.what()));
  }
}

// A byte count, or a size string as --max-memory takes.
std::uint64_t parse_size(const nlohmann::json& v, const std::string& origin) {
  if (v.is_number()) {
    const double d = v.get<double>();
    if (!(d > 0) || !std::isfinite(d))
      throw InvalidArgument(fmt::format("{}: field 'max_memory': expected a positive byte count, got {}", origin, d));
    return static_cast<std::uint64_t>(d);
  }
  if (!v.is_string())
    throw FormatError(fmt::format("{}: field 'max_memory': expected a number or a size string, found {}", origin,
                                  v.type_name()));
  return parse_byte_size(v.get<std::string>(), origin + ": field 'max_memory'");
}

}  // namespace

TrainJobConfig parse_train_job_config(const nlohmann::json& j, const std::string& origin) {
  namespace jf = json_field;
  if (!j.is_object()) throw FormatError(fmt::format("{}: expected a JSON object, found {}", origin, j.type_name()));
  for (const auto& [key, value] : j.items())
    if (!kFields.contains(key))
      throw InvalidArgument(fmt::format("{}: unknown field '{}' (docs/C_API.md lists the fields)", origin, key));
  TrainJobConfig c;
  TrainOptions& o = c.options;
  auto str = [&](const char* k) { return jf::opt_string(j, k, origin); };
  auto integer = [&](const char* k) { return jf::opt_int(j, k, origin); };
  auto number = [&](const char* k) { return jf::opt_number(j, k, origin); };

  o.data.path = jf::string(j, "data", origin);
  o.out = jf::string(j, "out", origin);
  if (auto v = str("resume")) o.resume = *v;
  if (auto v = str("format")) o.data.format = parse_data_format(*v);
  if (auto v = str("template")) o.data.chat_template = parse_chat_template(*v);
  if (auto v = integer("seq_len")) o.data.seq_len = *v;
  if (auto v = number("val_fraction")) o.data.validation_fraction = *v;
  if (auto v = integer("val_windows")) o.data.max_validation_windows = *v;
  if (auto v = integer("rank")) o.lora.rank = *v;
  if (auto v = number("alpha")) o.lora.alpha = static_cast<float>(*v);
  if (auto v = number("dropout")) o.lora.dropout = static_cast<float>(*v);
  if (auto v = jf::opt_bool(j, "rslora", origin)) o.lora.rslora = *v;
  if (auto v = str("targets")) o.lora.targets = parse_lora_targets(*v);
  if (auto v = str("optimizer"))
    o.optimizer.kind = parse_choice<OptimizerKind>(*v, "optimizer", origin, parse_optimizer_kind);
  // The same per-optimizer defaults as `pocketlora train`.
  if (o.optimizer.kind == OptimizerKind::Lion) o.optimizer.beta2 = 0.99f;
  if (o.optimizer.kind == OptimizerKind::Adafactor) o.optimizer.eps = 1e-30f;
  o.optimizer.lr = static_cast<float>(number("lr").value_or(2e-4));
  if (auto v = number("weight_decay")) o.optimizer.weight_decay = static_cast<float>(*v);
  o.optimizer.max_grad_norm = static_cast<float>(number("max_grad_norm").value_or(1.0));
  if (auto v = str("schedule")) o.schedule = parse_lr_schedule(*v);
  if (auto v = integer("warmup")) o.warmup_steps = *v;
  if (auto v = integer("steps")) o.steps = *v;
  if (auto v = integer("epochs")) o.epochs = *v;
  if (auto v = integer("batch")) o.batch = *v;
  if (auto v = integer("grad_accum")) o.grad_accum = *v;
  if (auto it = j.find("max_memory"); it != j.end() && !it->is_null()) o.max_memory = parse_size(*it, origin);
  if (auto v = str("checkpointing"))
    o.checkpointing = parse_choice<CheckpointingMode>(*v, "checkpointing", origin, parse_checkpointing_mode);
  if (auto v = str("embedding_dtype")) o.embedding_dtype = parse_table_dtype(*v);
  if (auto v = str("precision"))
    o.precision = parse_choice<Precision>(*v, "precision", origin, parse_precision);
  o.quant = parse_base_quant(str("quant").value_or("nf4"));
  if (auto v = integer("eval_every")) o.eval_every = *v;
  if (auto v = integer("save_every")) o.save_every = *v;
  if (auto v = integer("keep")) {
    if (*v < 1 || *v > 1000)
      throw InvalidArgument(fmt::format("{}: field 'keep': expected 1..1000 checkpoints, got {}", origin, *v));
    o.keep_checkpoints = static_cast<int>(*v);
  }
  if (auto v = integer("seed")) {
    if (*v < 0) throw InvalidArgument(fmt::format("{}: field 'seed': expected a non-negative integer", origin));
    o.seed = static_cast<std::uint64_t>(*v);
    o.data.seed = o.seed;
  }
  if (auto it = j.find("policy"); it != j.end() && !it->is_null()) {
    if (it->is_boolean()) {
      if (it->get<bool>()) c.policy = PolicyConfig{};
    } else {
      c.policy = parse_policy_config(*it, origin + ": field 'policy'");
    }
  }
  return c;
}

}  // namespace pocketlora
