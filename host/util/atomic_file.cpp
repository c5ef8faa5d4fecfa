#include "host/util/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "host/core/error.h"

namespace pocketlora {

namespace {
std::string os_error(const std::string& what, const std::filesystem::path& p) {
  return what + " '" + p.string() + "': " + std::strerror(errno);
}
}  // namespace

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
  tmp_ = path_;
  tmp_ += ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(os_error("cannot create", tmp_));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(os_error("cannot write", tmp_));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    written_ += static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw IoError("commit called twice for '" + path_.string() + "'");
  if (::fsync(fd_) != 0) throw IoError(os_error("cannot fsync", tmp_));
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_.c_str());
    throw IoError(os_error("cannot close", tmp_));
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::string msg = os_error("cannot rename temp file onto", path_);
    ::unlink(tmp_.c_str());
    throw IoError(msg);
  }
  // Persist the rename itself: fsync the containing directory.
  auto dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

namespace {

std::filesystem::path temp_path_for(const std::filesystem::path& path, const char* tag) {
  auto tmp = path;
  tmp += std::string(tag) + std::to_string(::getpid());
  return tmp;
}

void fsync_path(const std::filesystem::path& p, bool directory) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) throw IoError(os_error("cannot open for fsync", p));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw IoError(os_error("cannot fsync", p));
}

std::filesystem::path parent_of(const std::filesystem::path& p) {
  return p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
}

void rename_or_throw(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw IoError(os_error("cannot rename '" + from.string() + "' onto", to));
}

}  // namespace

AtomicDirWriter::AtomicDirWriter(std::filesystem::path path) : path_(std::move(path)) {
  tmp_ = temp_path_for(path_, ".tmp.");
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);  // a leftover of an earlier process that had our pid
  if (!std::filesystem::create_directory(tmp_, ec) || ec)
    throw IoError("cannot create directory '" + tmp_.string() + "': " + ec.message());
}

AtomicDirWriter::~AtomicDirWriter() {
  if (committed_) return;
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
}

void AtomicDirWriter::commit() {
  if (committed_) throw IoError("commit called twice for '" + path_.string() + "'");
  // Every file's bytes, then the directory entries, reach the disk before the rename can.
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp_))
    if (e.is_regular_file()) fsync_path(e.path(), false);
    else if (e.is_directory()) fsync_path(e.path(), true);
  fsync_path(tmp_, true);
  std::filesystem::path old;
  if (std::filesystem::exists(path_)) {
    old = temp_path_for(path_, ".old.tmp.");
    std::error_code ec;
    std::filesystem::remove_all(old, ec);
    rename_or_throw(path_, old);
  }
  rename_or_throw(tmp_, path_);
  committed_ = true;
  fsync_path(parent_of(path_), true);
  if (!old.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(old, ec);
  }
}

bool is_atomic_temp_name(const std::string& filename) {
  const auto at = filename.rfind(".tmp.");
  if (at == std::string::npos || at + 5 == filename.size()) return false;
  for (std::size_t i = at + 5; i < filename.size(); ++i)
    if (filename[i] < '0' || filename[i] > '9') return false;
  return true;
}

int remove_stale_atomic_temps(const std::filesystem::path& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!is_atomic_temp_name(name)) continue;
    const std::string digits = name.substr(name.rfind(".tmp.") + 5);
    if (digits.size() > 9) continue;  // not a pid this code wrote
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid()) continue;
    if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) continue;  // its writer may still be running
    std::error_code rm;
    std::filesystem::remove_all(e.path(), rm);
    if (!rm) ++removed;
  }
  return removed;
}

void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> data) {
  AtomicFileWriter w(path);
  w.write(data.data(), data.size());
  w.commit();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view text) {
  AtomicFileWriter w(path);
  w.write(text);
  w.commit();
}

}  // namespace pocketlora
