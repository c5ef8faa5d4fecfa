#pragma once
// The readers take paths (they memory-map), so each fuzz input is written to a file in a per-process scratch
// folder under /dev/shm (RAM; falls back to $TMPDIR) that is reused for every input and removed at exit.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace pocketlora::fuzz {

class ScratchDir {
 public:
  ScratchDir() {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                                 : std::filesystem::temp_directory_path();
    dir_ = base / ("pocketlora-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return dir_; }

  // Writes `bytes` to `name` (a path relative to the scratch folder, sub-folders created) and returns its path.
  std::filesystem::path write(const std::string& name, const std::uint8_t* data, std::size_t size) const {
    const auto p = dir_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
      std::fprintf(stderr, "fuzz: cannot write scratch file %s\n", p.c_str());
      std::abort();
    }
    return p;
  }
  std::filesystem::path write(const std::string& name, std::string_view text) const {
    return write(name, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  }

  // A sub-folder emptied of earlier outputs (quantized files from the previous input).
  std::filesystem::path fresh_subdir(const std::string& name) const {
    const auto p = dir_ / name;
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::filesystem::path dir_;
};

// One per fuzz process (libFuzzer runs inputs one after another in the same process).
inline const ScratchDir& scratch() {
  static const ScratchDir dir;
  return dir;
}

}  // namespace pocketlora::fuzz
