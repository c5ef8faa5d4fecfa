#include "host/util/process_memory.h"

#include <fstream>
#include <string>

namespace pocketlora {

std::uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

ResidentSet resident_set() {
  ResidentSet r;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("RssAnon:")) r.anon_bytes = std::stoull(line.substr(8)) * 1024;
    if (line.starts_with("RssFile:")) r.file_bytes = std::stoull(line.substr(8)) * 1024;
  }
  return r;
}

void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

}  // namespace pocketlora
