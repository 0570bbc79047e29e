// One process at a time in a directory: an advisory lock (flock) on a lock
// file that names its holder. The kernel drops the lock when the holder dies,
// so a lock file left by a dead process is stale by construction and is
// taken over; a live holder makes acquire() fail with its host, pid and start.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace asr {

class ExclusiveLock {
 public:
  // Locks `lock_file` (created if missing) or throws asr::Error naming the
  // holder, `what` is locked and how to proceed. `stale_holder`, when given,
  // receives the description of a dead holder whose lock file was taken over.
  static ExclusiveLock acquire(const std::filesystem::path& lock_file, const std::string& what,
                               std::string* stale_holder = nullptr);

  // Whether a live process holds `lock_file` now (false when it is missing).
  static bool is_held(const std::filesystem::path& lock_file);

  ExclusiveLock(ExclusiveLock&& other) noexcept;
  ExclusiveLock& operator=(ExclusiveLock&& other) noexcept;
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;
  // Unlocks and removes the lock file.
  ~ExclusiveLock();

  // Unlocks and removes the lock file now (idempotent).
  void release();
  const std::filesystem::path& path() const { return path_; }

 private:
  ExclusiveLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

// "pid 1234 on host node7 since 2026-11-30T10:00:00Z": who this process is,
// as written into lock files and temporary directory names' companions.
std::string this_process_description();

}  // namespace asr
