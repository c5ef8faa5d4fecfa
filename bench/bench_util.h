#pragma once
// Shared benchmark plumbing: wall-clock medians with warm-up, an aligned text table, atomic JSON output.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/core/tensor.h"

namespace pocketlora::bench {

// Median milliseconds of `reps` calls after `warmup` calls.
double median_ms(const std::function<void()>& fn, int reps, int warmup = 1);
// Median of `v` (non-empty; the mean of the middle two for an even count).
double median(std::vector<double> v);
// Bytes as whole MiB ("512"), for table cells and JSON.
std::string mib(double bytes);

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void print() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Deterministic f32 benchmark data in [-scale, scale] (values repeat with period 101).
Tensor bench_filled(Shape shape, float scale);

// "M,N,K;M,N,K" (positive integers) for --shapes options; throws naming the bad entry.
std::vector<std::array<std::int64_t, 3>> parse_mnk_list(const std::string& s);
// Non-empty items of a comma-separated list.
std::vector<std::string> split_csv(const std::string& s);

// Writes `j` (pretty-printed) atomically and says where.
void write_json(const std::string& path, const nlohmann::json& j);

}  // namespace pocketlora::bench
