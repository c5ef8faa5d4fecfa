#pragma once
// The per-step metrics of a run as JSON Lines, one record per optimizer step:
//   {"grad_norm":0.91,"loss":2.31,"lr":0.0002,"memory_bytes":123456,"skipped":false,"step":12,
//    "tokens_per_s":5321.4[,"val_loss":2.40]}
// val_loss only on steps that ran validation; a NaN/Inf value (a skipped step's loss) is written as null.
// Event records (append_event) sit between them, each with an "event" name and the "step" count it happened at:
//   {"event":"policy","step":2,"from":"training","to":"cooldown-pause","reason":"46.0 °C ...","readings":{...}}
// Each record is one write(2) on an O_APPEND descriptor, so a SIGKILL keeps every earlier line whole (a
// power cut may still lose the tail the kernel had not written back: the log is history, not state).
// A resumed run reopens the log keeping the records up to its checkpoint's step, so the history shows each step
// once.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pocketlora {

struct StepMetrics {
  std::int64_t step = 0;  // optimizer steps taken after this one (1 for the first)
  double loss = std::numeric_limits<double>::quiet_NaN();
  double lr = 0;
  double grad_norm = std::numeric_limits<double>::quiet_NaN();
  double tokens_per_s = 0;
  std::uint64_t memory_bytes = 0;  // device memory of the step (peak)
  bool skipped = false;            // NaN/Inf loss or gradient: no update
  std::optional<double> val_loss;
};

class MetricsLog {
 public:
  // keep_through_step < 0: start a fresh log (truncating any old one). >= 0 (resuming from a checkpoint at that
  // step): keep the existing records with step <= it, drop later ones and a torn last line, then append.
  explicit MetricsLog(std::filesystem::path path, std::int64_t keep_through_step = -1);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void append(const StepMetrics& m);
  // `record` must be an object with a string "event" and an integer "step" (steps done when it happened).
  void append_event(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_line(const std::string& line);
  std::filesystem::path path_;
  int fd_ = -1;
};

// Every whole record of a log; a torn last line (a kill mid-write) is skipped, a malformed line elsewhere is a
// FormatError naming the file and the line number.
// Event records are not step records: read_metrics_log skips them, read_metrics_events returns only them.
std::vector<StepMetrics> read_metrics_log(const std::filesystem::path& path);
std::vector<nlohmann::json> read_metrics_events(const std::filesystem::path& path);

}  // namespace pocketlora
