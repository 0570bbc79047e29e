// Helpers shared by every test binary: temp dirs, paths to the source tree,
// the built tools and ../shared.
#pragma once
#include <filesystem>
#include <string>

namespace asr::test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "asr-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

fs::path source_dir();
fs::path binary_dir();
// ../shared beside the checkout, or empty when absent (tests then GTEST_SKIP).
fs::path shared_dir();

// Runs a shell command, returns its exit status; output captured to `output`.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace asr::test
