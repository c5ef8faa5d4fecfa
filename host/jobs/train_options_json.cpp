#include "host/jobs/train_options_json.h"

#include <fmt/format.h>

#include <functional>
#include <set>

#include "host/core/error.h"
#include "host/util/json_field.h"

namespace pocketlora {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json optional_json(const auto& v) { return v ? json(*v) : json(); }

// One JSON object being read: every field must be known, and reading a field checks its type and names it.
class Reader {
 public:
  Reader(const json& obj, std::string path, const std::string& origin,
         std::initializer_list<const char*> known)
      : obj_(obj), path_(std::move(path)), origin_(origin) {
    if (!obj_.is_object())
      throw FormatError(fmt::format("{}: field '{}': expected an object, found {}", origin_, path_, obj_.type_name()));
    const std::set<std::string> names(known.begin(), known.end());
    for (const auto& [k, v] : obj_.items())
      if (!names.contains(k)) throw FormatError(fmt::format("{}: unknown field '{}'", origin_, name(k)));
  }

  std::string name(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }
  // What json_field's messages name as the origin: "FILE (train.data): field 'seq_len': expected integer, ...".
  std::string where() const { return origin_ + " (" + path_ + ")"; }
  const json& at(std::string_view key) const {
    const auto it = obj_.find(key);
    if (it == obj_.end()) throw FormatError(fmt::format("{}: missing field '{}'", origin_, name(key)));
    return *it;
  }
  bool has_value(std::string_view key) const { return !at(key).is_null(); }

  std::int64_t integer(std::string_view key) const { return json_field::integer(obj_, key, where()); }
  double number(std::string_view key) const { return json_field::number(obj_, key, where()); }
  // Seeds and byte counts: the whole uint64 range (json_field::integer stops at INT64_MAX).
  std::uint64_t u64(std::string_view key) const {
    const json& v = at(key);
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    const std::int64_t i = integer(key);
    if (i < 0) throw FormatError(fmt::format("{}: field '{}': expected an unsigned integer, found {}", origin_, name(key), i));
    return static_cast<std::uint64_t>(i);
  }
  float f32(std::string_view key) const { return static_cast<float>(number(key)); }
  bool boolean(std::string_view key) const {
    at(key);
    const auto v = json_field::opt_bool(obj_, key, where());
    if (!v) throw FormatError(fmt::format("{}: field '{}': expected a boolean, found null", origin_, name(key)));
    return *v;
  }
  std::string string(std::string_view key) const { return json_field::string(obj_, key, where()); }
  // A string turned into an enum by one of the option parsers; their InvalidArgument becomes a FormatError here.
  template <typename T>
  T parsed(std::string_view key, const std::function<T(const std::string&)>& parse) const {
    const std::string s = string(key);
    try {
      return parse(s);
    } catch (const InvalidArgument& e) {
      throw FormatError(fmt::format("{}: field '{}': {}", origin_, name(key), e.what()));
    }
  }
  Reader object(std::string_view key, std::initializer_list<const char*> known) const {
    return Reader(at(key), name(key), origin_, known);
  }

 private:
  const json& obj_;
  std::string path_;
  const std::string& origin_;
};

}  // namespace

json train_options_json(const TrainOptions& o) {
  const auto& d = o.data;
  const auto& op = o.optimizer;
  return {
      {"model", o.model.string()},
      {"tokenizer", o.tokenizer.string()},
      {"data",
       {{"path", d.path.string()},
        {"format", data_format_name(d.format)},
        {"chat_template", d.chat_template ? json(chat_template_name(*d.chat_template)) : json()},
        {"separator", d.separator},
        {"seq_len", d.seq_len},
        {"pack", optional_json(d.pack)},
        {"validation_fraction", d.validation_fraction},
        {"max_validation_windows", d.max_validation_windows},
        {"seed", d.seed}}},
      {"lora", lora_config_json(o.lora)},
      {"optimizer",
       {{"kind", optimizer_name(op.kind)},
        {"lr", op.lr},
        {"beta1", op.beta1},
        {"beta2", op.beta2},
        {"eps", op.eps},
        {"weight_decay", op.weight_decay},
        {"dampening", op.dampening},
        {"nesterov", op.nesterov},
        {"clip_threshold", op.clip_threshold},
        {"decay_rate", op.decay_rate},
        {"max_grad_norm", op.max_grad_norm}}},
      {"schedule", lr_schedule_name(o.schedule)},
      {"warmup_steps", o.warmup_steps},
      {"steps", o.steps},
      {"epochs", o.epochs},
      {"batch", o.batch},
      {"grad_accum", o.grad_accum},
      {"backend", backend_kind_name(o.backend)},
      {"device", optional_json(o.device)},
      {"quant", o.quant == BaseQuant::Nf4 ? "nf4" : "none"},
      {"max_memory", o.max_memory},
      {"checkpointing", checkpointing_mode_name(o.checkpointing)},
      {"embedding_dtype", table_dtype_name(o.embedding_dtype)},
      {"precision", precision_name(o.precision)},
      {"eval_every", o.eval_every},
      {"save_every", o.save_every},
      {"keep_checkpoints", o.keep_checkpoints},
      {"max_consecutive_skips", o.max_consecutive_skips},
      {"seed", o.seed},
  };
}

TrainOptions parse_train_options_json(const json& j, const std::string& origin) {
  const Reader r(j, "train", origin,
                 {"model", "tokenizer", "data", "lora", "optimizer", "schedule", "warmup_steps", "steps", "epochs",
                  "batch", "grad_accum", "backend", "device", "quant", "max_memory", "checkpointing",
                  "embedding_dtype", "precision", "eval_every", "save_every", "keep_checkpoints",
                  "max_consecutive_skips", "seed"});
  TrainOptions o;
  o.model = r.string("model");
  o.tokenizer = r.string("tokenizer");

  const Reader d = r.object("data", {"path", "format", "chat_template", "separator", "seq_len", "pack",
                                     "validation_fraction", "max_validation_windows", "seed"});
  o.data.path = d.string("path");
  o.data.format = d.parsed<DataFormat>("format", parse_data_format);
  if (d.has_value("chat_template")) o.data.chat_template = d.parsed<ChatTemplate>("chat_template", parse_chat_template);
  o.data.separator = d.string("separator");
  o.data.seq_len = d.integer("seq_len");
  if (d.has_value("pack")) o.data.pack = d.boolean("pack");
  o.data.validation_fraction = d.number("validation_fraction");
  o.data.max_validation_windows = d.integer("max_validation_windows");
  o.data.seed = d.u64("seed");

  const Reader l = r.object("lora", {"rank", "alpha", "dropout", "rslora", "targets"});
  o.lora.rank = l.integer("rank");
  o.lora.alpha = l.f32("alpha");
  o.lora.dropout = l.f32("dropout");
  o.lora.rslora = l.boolean("rslora");
  const json& targets = l.at("targets");
  if (!targets.is_array() || targets.empty())
    throw FormatError(fmt::format("{}: field 'train.lora.targets': expected a non-empty array of names", origin));
  std::string list;
  for (const auto& t : targets) {
    if (!t.is_string())
      throw FormatError(fmt::format("{}: field 'train.lora.targets': expected names, found {}", origin, t.type_name()));
    if (!list.empty()) list += ',';
    list += t.get<std::string>();
  }
  try {
    o.lora.targets = parse_lora_targets(list);
  } catch (const InvalidArgument& e) {
    throw FormatError(fmt::format("{}: field 'train.lora.targets': {}", origin, e.what()));
  }

  const Reader p = r.object("optimizer", {"kind", "lr", "beta1", "beta2", "eps", "weight_decay", "dampening",
                                          "nesterov", "clip_threshold", "decay_rate", "max_grad_norm"});
  o.optimizer.kind = p.parsed<OptimizerKind>("kind", parse_optimizer_kind);
  o.optimizer.lr = p.f32("lr");
  o.optimizer.beta1 = p.f32("beta1");
  o.optimizer.beta2 = p.f32("beta2");
  o.optimizer.eps = p.f32("eps");
  o.optimizer.weight_decay = p.f32("weight_decay");
  o.optimizer.dampening = p.f32("dampening");
  o.optimizer.nesterov = p.boolean("nesterov");
  o.optimizer.clip_threshold = p.f32("clip_threshold");
  o.optimizer.decay_rate = p.f32("decay_rate");
  o.optimizer.max_grad_norm = p.f32("max_grad_norm");

  o.schedule = r.parsed<LrScheduleKind>("schedule", [](const std::string& s) { return parse_lr_schedule(s); });
  o.warmup_steps = r.integer("warmup_steps");
  o.steps = r.integer("steps");
  o.epochs = r.integer("epochs");
  o.batch = r.integer("batch");
  o.grad_accum = r.integer("grad_accum");
  o.backend = r.parsed<BackendKind>("backend", parse_backend_kind);
  if (r.has_value("device")) o.device = static_cast<int>(r.integer("device"));
  o.quant = r.parsed<BaseQuant>("quant", parse_base_quant);
  o.max_memory = r.u64("max_memory");
  o.checkpointing = r.parsed<CheckpointingMode>("checkpointing", parse_checkpointing_mode);
  o.embedding_dtype = r.parsed<TableDtype>("embedding_dtype", parse_table_dtype);
  o.precision = r.parsed<Precision>("precision", parse_precision);
  o.eval_every = r.integer("eval_every");
  o.save_every = r.integer("save_every");
  o.keep_checkpoints = static_cast<int>(r.integer("keep_checkpoints"));
  o.max_consecutive_skips = static_cast<int>(r.integer("max_consecutive_skips"));
  o.seed = r.u64("seed");
  return o;
}

}  // namespace pocketlora
