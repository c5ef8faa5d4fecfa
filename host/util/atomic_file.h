#pragma once
// Crash-safe file output: data goes to "<path>.tmp.<pid>", is fsync'ed, then renamed over <path>, so a kill
// at any moment leaves either the old file or the new one, never a torn checkpoint or adapter.
#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace pocketlora {

void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> data);
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// Streams pieces into the temp file; commit() makes it visible, destruction without commit() removes it.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  std::size_t bytes_written() const { return written_; }
  void commit();

 private:
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
  std::size_t written_ = 0;
};

}  // namespace pocketlora
