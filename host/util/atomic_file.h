#pragma once
// Crash-safe file output: data goes to "<path>.tmp.<pid>", is fsync'ed, then renamed over <path>, so a kill
// at any moment leaves either the old file or the new one, never a torn checkpoint or adapter.
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
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

// The directory equivalent: the caller writes files into dir() = "<path>.tmp.<pid>" (created beside <path>);
// commit() fsyncs every file in it and the directory, renames it onto <path> and fsyncs the parent, so a kill at
// any point leaves either no <path> (or the previous one) or the complete new one. Destruction without commit()
// removes the temp dir. An existing <path> is replaced: it is first renamed aside to "<path>.old.tmp.<pid>" and
// removed after the new one is in place (a kill in that window leaves no <path>; callers that keep history, as
// the checkpoints do, fall back to an older entry).
class AtomicDirWriter {
 public:
  explicit AtomicDirWriter(std::filesystem::path path);
  ~AtomicDirWriter();
  AtomicDirWriter(const AtomicDirWriter&) = delete;
  AtomicDirWriter& operator=(const AtomicDirWriter&) = delete;

  const std::filesystem::path& dir() const { return tmp_; }
  void commit();

 private:
  std::filesystem::path path_, tmp_;
  bool committed_ = false;
};

// True for names AtomicFileWriter / AtomicDirWriter use for their temporaries ("<name>.tmp.<pid>").
bool is_atomic_temp_name(const std::string& filename);
// Removes the temporaries that killed writers left in `dir` (those whose pid is no running process); returns how
// many it removed. Never touches other entries or this process's own temporaries.
int remove_stale_atomic_temps(const std::filesystem::path& dir);

}  // namespace pocketlora
