#include "tools/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace pocketlora::cli {

ProgressBar::ProgressBar(std::FILE* out, double plain_interval_s)
    : out_(out),
      tty_(isatty(fileno(out)) != 0),
      interval_s_(plain_interval_s),
      start_(std::chrono::steady_clock::now()) {}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string human_duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return "--";
  const auto t = static_cast<std::int64_t>(std::llround(s));
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::string ProgressBar::format(const ProgressSample& s, double eta_s, int bar_width) {
  std::string bar;
  if (bar_width > 0 && s.total > 0) {
    const auto filled = static_cast<int>(std::clamp<std::int64_t>(s.step * bar_width / s.total, 0, bar_width));
    // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on the
    // chained operator+ form.
    bar.reserve(static_cast<std::size_t>(bar_width) + 3);
    bar.push_back('[');
    bar.append(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(bar_width - filled), '.');
    bar.append("] ");
  }
  return fmt::format("{}step {}/{}  loss {:.4f}{}  lr {:.2e}  {:.0f} tok/s  ETA {}  mem {}{}", bar, s.step, s.total,
                     s.loss, s.skipped ? " (skipped)" : "", s.lr, s.tokens_per_s, human_duration(eta_s),
                     human_bytes(s.memory_bytes), s.status.empty() ? "" : "  [" + s.status + "]");
}

void ProgressBar::update(const ProgressSample& s) {
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = s.step - 1;
    start_ = now;
  }
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::int64_t done = s.step - first_step_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(s.total - s.step) : -1.0;
  if (tty_) {
    fmt::print(out_, "\r{}\x1b[K", format(s, eta, 24));
    open_line_ = true;
    std::fflush(out_);
    return;
  }
  const bool last = s.step >= s.total;
  if (!last && last_print_.time_since_epoch().count() != 0 &&
      std::chrono::duration<double>(now - last_print_).count() < interval_s_)
    return;
  last_print_ = now;
  fmt::print(out_, "{}\n", format(s, eta, 0));
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (open_line_) fmt::print(out_, "\n");
  open_line_ = false;
  std::fflush(out_);
}

}  // namespace pocketlora::cli
