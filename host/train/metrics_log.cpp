#include "host/train/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/util/atomic_file.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"

namespace pocketlora {

namespace {

using json = nlohmann::json;

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double number_or_nan(const json& obj, const char* key, const std::string& origin) {
  auto it = obj.find(key);
  if (it != obj.end() && it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  return json_field::number(obj, key, origin);
}

std::string record_line(const StepMetrics& m) {
  json j = {{"step", m.step},           {"loss", finite_or_null(m.loss)},
            {"lr", finite_or_null(m.lr)}, {"grad_norm", finite_or_null(m.grad_norm)},
            {"tokens_per_s", finite_or_null(m.tokens_per_s)}, {"memory_bytes", m.memory_bytes},
            {"skipped", m.skipped}};
  if (m.val_loss) j["val_loss"] = finite_or_null(*m.val_loss);
  return j.dump() + "\n";
}

StepMetrics parse_record(const json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(origin + ": expected a JSON object");
  StepMetrics m;
  m.step = json_field::integer(j, "step", origin);
  m.loss = number_or_nan(j, "loss", origin);
  m.lr = number_or_nan(j, "lr", origin);
  m.grad_norm = number_or_nan(j, "grad_norm", origin);
  m.tokens_per_s = number_or_nan(j, "tokens_per_s", origin);
  m.memory_bytes = static_cast<std::uint64_t>(json_field::integer(j, "memory_bytes", origin));
  m.skipped = json_field::opt_bool(j, "skipped", origin).value_or(false);
  if (j.contains("val_loss")) m.val_loss = number_or_nan(j, "val_loss", origin);
  return m;
}

// Every whole line of the log as parsed JSON, with its origin ("FILE:LINE") for errors.
std::vector<std::pair<json, std::string>> read_lines(const std::filesystem::path& path) {
  const std::string text = read_file_text(path);
  std::vector<std::pair<json, std::string>> out;
  std::size_t pos = 0;
  for (int line_no = 1; pos < text.size(); ++line_no) {
    const std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // no newline: a torn last record
    std::string origin = path.string() + ":" + std::to_string(line_no);
    try {
      out.emplace_back(json::parse(text.substr(pos, end - pos)), std::move(origin));
    } catch (const json::parse_error& e) {
      throw FormatError(origin + ": not a JSON record: " + e.what());
    }
    pos = end + 1;
  }
  return out;
}

bool is_event(const json& j) { return j.is_object() && j.contains("event"); }

}  // namespace

std::vector<StepMetrics> read_metrics_log(const std::filesystem::path& path) {
  std::vector<StepMetrics> out;
  for (const auto& [j, origin] : read_lines(path))
    if (!is_event(j)) out.push_back(parse_record(j, origin));
  return out;
}

std::vector<json> read_metrics_events(const std::filesystem::path& path) {
  std::vector<json> out;
  for (auto& [j, origin] : read_lines(path))
    if (is_event(j)) out.push_back(j);
  return out;
}

MetricsLog::MetricsLog(std::filesystem::path path, std::int64_t keep_through_step) : path_(std::move(path)) {
  if (keep_through_step >= 0 && std::filesystem::exists(path_)) {
    std::string kept;
    for (const auto& [j, origin] : read_lines(path_)) {
      if (is_event(j)) {
        if (json_field::integer(j, "step", origin) <= keep_through_step) kept += j.dump() + "\n";
      } else if (const StepMetrics m = parse_record(j, origin); m.step <= keep_through_step) {
        kept += record_line(m);
      }
    }
    write_file_atomic(path_, kept);
  } else {
    write_file_atomic(path_, std::string_view{});
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) throw IoError("cannot open metrics log '" + path_.string() + "': " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const StepMetrics& m) { write_line(record_line(m)); }

void MetricsLog::append_event(const json& record) {
  const std::string origin = path_.string() + " (event record)";
  if (!record.is_object()) throw InvalidArgument(origin + ": expected a JSON object");
  json_field::string(record, "event", origin);
  json_field::integer(record, "step", origin);
  // Replace, not throw, on invalid UTF-8: a sysfs zone name is whatever bytes the kernel driver wrote.
  write_line(record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

void MetricsLog::write_line(const std::string& line) {
  // One write for the whole line: O_APPEND writes of a regular file are not interleaved or split by a kill.
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()))
    throw IoError("cannot append to metrics log '" + path_.string() + "': " +
                  (n < 0 ? std::strerror(errno) : "short write"));
}

}  // namespace pocketlora
