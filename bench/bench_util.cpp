#include "bench/bench_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "host/util/atomic_file.h"

namespace pocketlora::bench {

std::vector<std::array<std::int64_t, 3>> parse_mnk_list(const std::string& s) {
  std::vector<std::array<std::int64_t, 3>> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ';')) {
    std::array<std::int64_t, 3> mnk{};
    if (std::sscanf(item.c_str(), "%ld,%ld,%ld", &mnk[0], &mnk[1], &mnk[2]) != 3 || mnk[0] <= 0 || mnk[1] <= 0 ||
        mnk[2] <= 0)
      throw std::runtime_error("bad --shapes entry '" + item + "' (expected M,N,K with positive integers)");
    v.push_back(mnk);
  }
  return v;
}

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) v.push_back(x);
  return v;
}

double median_ms(const std::function<void()>& fn, int reps, int warmup) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < std::max(1, reps); ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

std::string mib(double bytes) { return fmt::format("{:.0f}", bytes / 1048576.0); }

void Table::print() const {
  std::vector<std::size_t> w(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  };
  widen(header_);
  for (auto& r : rows_) widen(r);
  auto line = [&](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < w.size(); ++i)
      std::printf("%s%-*s", i ? "  " : "", static_cast<int>(w[i]), i < r.size() ? r[i].c_str() : "");
    std::printf("\n");
  };
  line(header_);
  std::size_t total = 0;
  for (auto x : w) total += x + 2;
  std::printf("%s\n", std::string(total, '-').c_str());
  for (auto& r : rows_) line(r);
}

Tensor bench_filled(Shape shape, float scale) {
  Tensor t = Tensor::zeros(std::move(shape));
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * static_cast<float>((i * 37 % 101) - 50) / 50;
  return t;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace pocketlora::bench
