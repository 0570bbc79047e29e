#include "test_support.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace asr::test {

TempDir::TempDir(const std::string& prefix) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path candidate = fs::temp_directory_path() / (prefix + "-" + std::to_string(rd()));
    if (fs::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("TempDir: could not create a temp directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty() && !std::getenv("ASR_KEEP_TEST_DIRS")) fs::remove_all(path_, ec);
}

fs::path source_dir() { return fs::path(ASR_SOURCE_DIR); }
fs::path binary_dir() { return fs::path(ASR_BINARY_DIR); }

fs::path shared_dir() {
  if (const char* env = std::getenv("ASR_SHARED_DIR"); env && *env && fs::is_directory(env))
    return fs::path(env);
  fs::path p = fs::path(ASR_SHARED_DIR);
  std::error_code ec;
  if (fs::is_directory(p, ec)) return fs::canonical(p, ec);
  return {};
}

int run_command(const std::string& command, std::string* output) {
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace asr::test
