#pragma once
// An advisory lock on a file (flock): what serialises the read-modify-write of on-disk state between processes
// (two `adapters add`, a `schedule cancel` while `schedule run` writes a job). The kernel drops it when the
// holder exits, SIGKILL included, so a killed process never leaves a queue or store locked. flock exists on
// Android's bionic too. Locks taken through two separate FileLocks conflict even inside one process.
#include <filesystem>
#include <optional>

namespace pocketlora {

class FileLock {
 public:
  enum class Mode { Shared, Exclusive };
  // Opens (creating, with its parent directories) `path` and blocks until the lock is held. IoError naming the
  // path when the file cannot be created or locked.
  explicit FileLock(const std::filesystem::path& path, Mode mode = Mode::Exclusive);
  // The same without waiting: nullopt when another holder has a conflicting lock.
  static std::optional<FileLock> try_lock(const std::filesystem::path& path, Mode mode = Mode::Exclusive);
  ~FileLock();
  FileLock(FileLock&& o) noexcept;
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  FileLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  static int open_lock_file(const std::filesystem::path& path);
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace pocketlora
