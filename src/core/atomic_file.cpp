#include "asr/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

fs::path temp_path_for(const fs::path& final_path) {
  return final_path.parent_path() / ("." + final_path.filename().string() + ".tmp." + std::to_string(getpid()));
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw DataError("cannot open " + path.string() + " to sync it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw DataError("fsync of " + path.string() + " failed: " + std::strerror(err));
}

void rename_durable(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw DataError("cannot rename " + from.string() + " to " + to.string() + ": " + std::strerror(errno));
  fs::path dir = to.parent_path().empty() ? fs::path(".") : to.parent_path();
  fsync_path(dir);
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  fs::path tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw DataError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw DataError("cannot write " + path.string() + ": " + std::strerror(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw DataError("cannot sync " + path.string() + ": " + std::strerror(err));
  }
  try {
    rename_durable(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open " + path.string() + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw DataError("read error on " + path.string());
  return ss.str();
}

}  // namespace asr
