#include "host/util/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "host/core/error.h"

namespace pocketlora {

namespace fs = std::filesystem;

int FileLock::open_lock_file(const fs::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) throw IoError("cannot create '" + path.parent_path().string() + "' for the lock file: " + ec.message());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot open lock file '" + path.string() + "': " + std::strerror(errno));
  return fd;
}

FileLock::FileLock(const fs::path& path, Mode mode) : path_(path), fd_(open_lock_file(path)) {
  while (::flock(fd_, mode == Mode::Exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno == EINTR) continue;  // a signal (Ctrl-C sets a flag and returns): keep waiting
    const std::string why = std::strerror(errno);
    ::close(fd_);
    throw IoError("cannot lock '" + path.string() + "': " + why);
  }
}

std::optional<FileLock> FileLock::try_lock(const fs::path& path, Mode mode) {
  const int fd = open_lock_file(path);
  while (::flock(fd, (mode == Mode::Exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return std::nullopt;
    throw IoError("cannot lock '" + path.string() + "': " + std::strerror(err));
  }
  return FileLock(path, fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

FileLock::FileLock(FileLock&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

}  // namespace pocketlora
