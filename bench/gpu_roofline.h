#pragma once
// Measured device peaks (not datasheet numbers): fp32 FMA throughput and streaming bandwidth, from two probe
// kernels timed with GPU timestamps. Benchmarks report "% of roofline" against these.
#include "runtime/device.h"

namespace pocketlora::bench {

struct Roofline {
  double peak_gflops = 0;
  double peak_gbps = 0;
  // Best achievable time for a kernel doing `flops` and moving `bytes`.
  double bound_ms(double flops, double bytes) const {
    return std::max(flops / (peak_gflops * 1e6), bytes / (peak_gbps * 1e6));
  }
};

// `bytes` is the streaming working set (default 64 MiB, capped by the device's binding limit).
Roofline measure_roofline(vk::Device& dev, std::uint64_t bytes = 64ull << 20);

}  // namespace pocketlora::bench
