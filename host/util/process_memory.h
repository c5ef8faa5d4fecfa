#pragma once
// This process's host memory, as the kernel counts it (Linux /proc/self): for the memory figures reported next to
// a plan (the trainer's summary, bench train).
#include <cstdint>

namespace pocketlora {

// Peak resident set size (VmHWM) in bytes; 0 where /proc is unavailable.
std::uint64_t peak_rss_bytes();
// Resets the peak to the current RSS (Linux >= 4.0), so the next peak_rss_bytes() covers what follows.
void reset_peak_rss();

}  // namespace pocketlora
