#pragma once
// The training progress display: on a terminal, one line redrawn in place (bar,
// step/total, loss, tokens/s, ETA, device memory); when stdout is a file or a
// pipe, a plain line at most every `plain_interval_s` seconds and at the last
// step, so logs stay readable and small.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace pocketlora::cli {

struct ProgressSample {
  std::int64_t step = 0, total = 0;
  double loss = 0, lr = 0, tokens_per_s = 0;
  std::uint64_t memory_bytes = 0;
  bool skipped = false;
  std::string status;  // the device policy's state, e.g. "cooldown-throttle 43.0 °C"; empty: none shown
};

class ProgressBar {
 public:
  explicit ProgressBar(std::FILE* out = stdout, double plain_interval_s = 5.0);
  void update(const ProgressSample& s);
  // Ends the redrawn line (so the next output starts on a fresh line).
  void finish();
  bool interactive() const { return tty_; }

  // The text of one update, without control characters: for the plain mode and
  // for tests.
  static std::string format(const ProgressSample& s, double eta_s, int bar_width);

 private:
  std::FILE* out_;
  bool tty_ = false, open_line_ = false;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_print_{};
  std::int64_t first_step_ = -1;
};

// "1.5 GiB", "312 MiB", "4.0 KiB".
std::string human_bytes(std::uint64_t bytes);
// "1h02m", "3m05s", "42s"; "--" when unknown (negative).
std::string human_duration(double seconds);

}  // namespace pocketlora::cli
