#include "asr/core/exclusive_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

namespace {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string read_holder(int fd) {
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "an unknown process";
  std::string text(buf, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text.empty() ? "an unknown process" : text;
}

void write_holder(int fd, const fs::path& path) {
  const std::string me = this_process_description() + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    throw Error("cannot write the lock file " + path.string() + ": " + std::strerror(errno));
}

// Whether `fd` still is the file at `path`: a holder that released the lock
// unlinked the file, and a lock on the unlinked inode would lock nothing.
bool still_linked(int fd, const fs::path& path) {
  struct stat by_fd {}, by_path {};
  return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 && by_fd.st_ino == by_path.st_ino &&
         by_fd.st_dev == by_path.st_dev;
}

int open_locked(const fs::path& lock_file, const std::string& what, int& lock_errno) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw Error("cannot create the lock file " + lock_file.string() + " for " + what + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      lock_errno = errno;
      return fd;
    }
    if (still_linked(fd, lock_file)) {
      lock_errno = 0;
      return fd;
    }
    ::close(fd);
  }
  throw Error("cannot lock " + lock_file.string() + " for " + what + ": it keeps being replaced by another process");
}

}  // namespace

std::string this_process_description() {
  char host[256] = "unknown-host";
  ::gethostname(host, sizeof host - 1);
  static const std::string started = utc_now();
  return "pid " + std::to_string(::getpid()) + " on host " + host + " since " + started;
}

ExclusiveLock ExclusiveLock::acquire(const fs::path& lock_file, const std::string& what, std::string* stale_holder) {
  int err = 0;
  int fd = open_locked(lock_file, what, err);
  if (err != 0) {
    const std::string holder = read_holder(fd);
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw Error(what + " is in use by " + holder + " (lock file " + lock_file.string() +
                  "); wait for that run to finish or stop it, or choose another directory");
    throw Error("cannot lock " + lock_file.string() + " for " + what + ": " + std::strerror(err));
  }
  const std::string previous = read_holder(fd);
  if (stale_holder) *stale_holder = previous == "an unknown process" ? "" : previous;
  try {
    write_holder(fd, lock_file);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return ExclusiveLock(lock_file, fd);
}

bool ExclusiveLock::is_held(const fs::path& lock_file) {
  int fd = ::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

ExclusiveLock::ExclusiveLock(ExclusiveLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

ExclusiveLock& ExclusiveLock::operator=(ExclusiveLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

ExclusiveLock::~ExclusiveLock() { release(); }

void ExclusiveLock::release() {
  if (fd_ < 0) return;
  // Unlink while still holding the lock, so no waiter locks a file that is
  // about to disappear.
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace asr
