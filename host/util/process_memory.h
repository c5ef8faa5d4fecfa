#pragma once
// This process's host memory, as the kernel counts it (Linux /proc/self): for the memory figures reported next to
// a plan (the trainer's summary, bench train).
#include <cstdint>

namespace pocketlora {

// Peak resident set size (VmHWM) in bytes; 0 where /proc is unavailable.
std::uint64_t peak_rss_bytes();
// The resident set now, split as the kernel counts it: anonymous pages (heap, this process's own copies) and
// file-backed pages (mapped checkpoints, libraries: clean, dropped under pressure and re-read). 0s where /proc
// is unavailable.
struct ResidentSet {
  std::uint64_t anon_bytes = 0, file_bytes = 0;
};
ResidentSet resident_set();
// Resets the peak to the current RSS (Linux >= 4.0), so the next peak_rss_bytes() covers what follows.
void reset_peak_rss();

}  // namespace pocketlora
