#include "output_dir.h"

#include <spdlog/spdlog.h>
#include <stdio.h>  // renameat2
#include <fcntl.h>  // AT_FDCWD
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/core/file_checks.h"

namespace asr {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTempLockName = ".lock";

fs::path normalized_output(const std::string& output) {
  std::error_code ec;
  fs::path out = fs::absolute(output, ec).lexically_normal();
  if (ec) throw Error("cannot resolve --output " + output + ": " + ec.message());
  if (out.filename().empty()) out = out.parent_path();
  return out;
}

// "<parent>/.<name><suffix>": hidden siblings, on the same filesystem, so renames stay atomic.
fs::path sibling(const fs::path& out, const std::string& suffix) {
  return out.parent_path() / ("." + out.filename().string() + suffix);
}

ExclusiveLock lock_output(const fs::path& out) {
  std::error_code ec;
  fs::create_directories(out.parent_path(), ec);
  if (ec) throw Error("cannot create " + out.parent_path().string() + " for --output: " + ec.message());
  const fs::path lock_file = sibling(out, ".lock");
  std::string stale;
  try {
    ExclusiveLock lock = ExclusiveLock::acquire(lock_file, "output directory " + out.string(), &stale);
    if (!stale.empty()) spdlog::info("took over the lock of {} from {}, which is no longer running", out.string(), stale);
    return lock;
  } catch (const Error& e) {
    if (ExclusiveLock::is_held(lock_file)) throw;  // a live run has the output: usage, exit 2
    throw DataError(e.what());  // the lock file could not be created or written (disk full, permissions)
  }
}

void refuse_unless_replaceable(const fs::path& out, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!overwrite) throw Error("output " + out.string() + " already exists; pass --overwrite to replace it");
  if (!fs::is_directory(out, ec))
    throw Error("output " + out.string() + " is " + describe_file_type(out) +
                ", not a directory; choose another --output");
  if (!fs::is_empty(out, ec) && !fs::exists(out / "manifest.json", ec))
    throw Error("output " + out.string() + " is not empty and holds no manifest.json; refusing to replace "
                "a directory asr_preprocess did not write");
}

// Who made a temporary directory, from its lock file ("" when there is none).
std::string temp_dir_holder(const fs::path& dir) {
  std::string text;
  try {
    text = read_file(dir / kTempLockName);
  } catch (const Error&) {
    return "";
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

// Holders read "pid N on host H since T". A lock taken on another host over a
// network filesystem may not be visible here, so only this host's count as
// provably dead.
bool made_on_this_host(const std::string& holder) {
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  return holder.empty() || holder.find(std::string(" on host ") + host + " ") != std::string::npos;
}

// Called with the output locked: every writer of a temporary directory holds
// that lock, so one whose own lock is free belongs to a process that is gone.
void remove_if_dead(const fs::path& dir) {
  const std::string holder = temp_dir_holder(dir);
  if (!made_on_this_host(holder)) {
    spdlog::warn("left {} in place: {} made it, and that process cannot be checked from this host; "
                 "remove it by hand once that run is over", dir.string(), holder);
    return;
  }
  if (ExclusiveLock::is_held(dir / kTempLockName)) {
    spdlog::warn("left {} in place: it is in use by {}", dir.string(), holder);
    return;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    spdlog::warn("cannot remove the stale temporary directory {}: {}", dir.string(), ec.message());
  else
    spdlog::info("removed {}, the temporary directory of an interrupted run ({}; no longer running)", dir.string(),
                 holder.empty() ? "it had not locked it yet" : holder);
}

void remove_stale_temp_dirs(const fs::path& out) {
  const std::string prefix = "." + out.filename().string() + ".partial-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(out.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code type_ec;
    if (name.rfind(prefix, 0) == 0 && entry.is_directory(type_ec)) remove_if_dead(entry.path());
  }
}

void remove_or_warn(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("cannot remove {}: {}; remove it by hand", dir.string(), ec.message());
}

}  // namespace

OutputDirectory::OutputDirectory(const std::string& output, bool overwrite)
    : final_(normalized_output(output)), output_lock_(lock_output(final_)) {
  refuse_unless_replaceable(final_, overwrite);
  remove_stale_temp_dirs(final_);
  temp_ = sibling(final_, ".partial-" + std::to_string(::getpid()));
  std::error_code ec;
  if (!fs::create_directory(temp_, ec))
    throw DataError("cannot create the temporary directory " + temp_.string() + ": " +
                    (ec ? ec.message() : "it already exists"));
  try {
    temp_lock_.emplace(ExclusiveLock::acquire(temp_ / kTempLockName, "temporary directory " + temp_.string()));
  } catch (const Error& e) {
    remove_or_warn(temp_);
    throw DataError(e.what());  // not contention (the output is locked): the disk refused the lock file
  }
}

OutputDirectory::~OutputDirectory() {
  if (!installed_) remove_or_warn(temp_);
}

void OutputDirectory::install() {
  temp_lock_.reset();  // its file must not end up in the output
  std::error_code ec;
  if (!fs::exists(final_, ec)) {
    rename_durable(temp_, final_);
    installed_ = true;
    return;
  }
  // One atomic swap: the output is never missing, and temp_ then holds the old one.
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_EXCHANGE) == 0) {
    installed_ = true;
    fsync_path(final_.parent_path());
    remove_or_warn(temp_);
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    throw DataError("cannot swap " + temp_.string() + " into place at " + final_.string() + ": " +
                    std::strerror(errno));
  // A filesystem without RENAME_EXCHANGE (NFS): two renames. The old output
  // waits under a ".partial-" name, so a crash in between leaves it where the
  // next run's stale cleanup finds it.
  const fs::path old = sibling(final_, ".partial-" + std::to_string(::getpid()) + ".old");
  rename_durable(final_, old);
  try {
    rename_durable(temp_, final_);
  } catch (const Error&) {
    ::rename(old.c_str(), final_.c_str());  // put the old output back
    throw;
  }
  installed_ = true;
  remove_or_warn(old);
}

}  // namespace asr
