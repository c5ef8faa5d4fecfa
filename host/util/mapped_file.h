#pragma once
// Read-only memory map of a whole file. Model weights are read through this so nothing is copied until a
// tensor is actually needed (and on a phone, pages can be dropped by the OS under pressure).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace pocketlora {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::filesystem::path& path);  // throws IoError naming the path
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }
  // Drops the pages holding `bytes` (a range inside this mapping; whole pages only) from this process's resident
  // set: once a tensor has been converted out of the file, its pages need not count against the app's memory (a
  // phone's low-memory killer counts them). They stay in the page cache and a later read maps them back, so views
  // over the range remain valid. InternalError for a range outside the mapping.
  void release_pages(std::span<const std::uint8_t> bytes) const;

 private:
  std::filesystem::path path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace pocketlora
