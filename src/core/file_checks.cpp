#include "asr/core/file_checks.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

namespace {

std::string type_name(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string describe_file_type(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno == ENOENT ? "missing" : std::strerror(errno);
  return type_name(st.st_mode);
}

void require_regular_input(const fs::path& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    throw DataError(std::string(what) + " " + path.string() + " cannot be read: " + std::strerror(err) +
                    (err == ENOENT ? "; check the path" : ""));
  }
  if (!S_ISREG(st.st_mode))
    throw DataError(std::string(what) + " " + path.string() + " is " + type_name(st.st_mode) +
                    ", not a regular file; give the path of a file (pipes, devices and sockets are refused "
                    "because reading them can block or never end)");
}

void require_writable_output(const fs::path& path, std::string_view what, const std::vector<fs::path>& inputs) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error(std::string(what) + " " + path.string() + " is " + type_name(st.st_mode) +
                ", not a regular file; choose a file path to write");
  for (const auto& input : inputs) {
    std::error_code ec;
    if (fs::equivalent(path, input, ec))
      throw Error(std::string(what) + " " + path.string() + " is the same file as the input " + input.string() +
                  "; writing it would destroy the input, choose another output path");
  }
}

}  // namespace asr
