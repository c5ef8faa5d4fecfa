#include "bench/gpu_roofline.h"

#include <algorithm>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "runtime/command.h"
#include "shaders/common/probe_push.h"
#include "shaders/shader_ids.h"

namespace pocketlora::bench {

namespace {
double median_timestamp_ms(vk::Sequence& seq) {
  seq.submit();
  auto t = seq.timings();
  std::vector<double> ms;
  for (std::size_t i = 1; i < t.size(); ++i) ms.push_back(t[i].ms);  // first is warm-up
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}
}  // namespace

Roofline measure_roofline(vk::Device& dev, std::uint64_t bytes) {
  Roofline r;
  const std::uint32_t wg = dev.profile().u32("elementwise.wg");
  bytes = std::min<std::uint64_t>(bytes, dev.caps().max_storage_buffer_range) / 16 * 16;
  vk::Arena arena(dev, vk::Lifetime::Scratch, "roofline", vk::MemoryKind::Device, bytes + (1 << 20));
  {
    // Bandwidth: enough work to dwarf the dispatch overhead.
    auto src = arena.allocate(bytes, "probe src");
    auto dst = arena.allocate(bytes, "probe dst");
    vk::Sequence seq(dev, true);
    const auto n = static_cast<std::uint32_t>(bytes / 16);
    shader::ProbePush push{n, 0, 1.0f, 0.0f};
    const auto& pipe = dev.pipeline({shaders::probe_peak_bandwidth, {wg}, 2, sizeof(push)});
    const std::uint32_t groups = std::min<std::uint32_t>((n + wg - 1) / wg, 65535);
    for (int i = 0; i < 4; ++i) seq.dispatch(pipe, {vk::reads(src), vk::writes(dst)}, push, {groups, 1, 1}, "bw");
    const double ms = median_timestamp_ms(seq);
    r.peak_gbps = ms > 0 ? 2.0 * bytes / ms * 1e-6 : 0;
  }
  {
    const std::uint32_t invocations = std::max<std::uint32_t>(wg * 256, 65536);
    auto sink = arena.allocate(static_cast<std::uint64_t>(invocations) * 16, "probe sink");
    shader::ProbePush push{0, 2048, 0.999f, 0.001f};
    const auto& pipe = dev.pipeline({shaders::probe_peak_flops, {wg}, 1, sizeof(push)});
    vk::Sequence seq(dev, true);
    for (int i = 0; i < 4; ++i) seq.dispatch(pipe, {vk::writes(sink)}, push, {invocations / wg, 1, 1}, "flops");
    const double ms = median_timestamp_ms(seq);
    r.peak_gflops = ms > 0 ? static_cast<double>(invocations) * push.iters * 8 * 4 * 2 / ms * 1e-6 : 0;
  }
  return r;
}

namespace {
BenchRegistration register_gpu_roofline("roofline", "Measure the device's peak fp32 FMA throughput and streaming bandwidth",
                      [](CLI::App& sub) {
                        auto out = std::make_shared<std::string>("bench-roofline.json");
                        sub.add_option("--out", *out, "JSON output path")->capture_default_str();
                        return [out] {
                          vk::Device dev;
                          Roofline r = measure_roofline(dev);
                          fmt::print("device: {}\npeak fp32: {:.2f} GFLOPS\npeak bandwidth: {:.2f} GB/s\n",
                                     dev.caps().name, r.peak_gflops, r.peak_gbps);
                          write_json(*out, {{"benchmark", "roofline"},
                                            {"device", dev.caps().name},
                                            {"peak_gflops", r.peak_gflops},
                                            {"peak_gbps", r.peak_gbps}});
                          return 0;
                        };
                      });
}  // namespace

}  // namespace pocketlora::bench
