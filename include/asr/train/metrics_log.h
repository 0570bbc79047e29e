// metrics.jsonl: one JSON object per line, appended and flushed per record,
// so a crash loses at most the line being written and `tail -f` shows
// progress live.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <vector>

namespace asr {

class MetricsLog {
 public:
  // Opens `path` for appending. With `resume_step`, records whose "step" is
  // greater are dropped first (rewritten atomically), as are unparsable
  // lines (a torn last line), so a resumed run does not log those steps twice.
  explicit MetricsLog(const std::filesystem::path& path, std::optional<int64_t> resume_step = std::nullopt);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// All records of a metrics.jsonl file (for tests and tools); a malformed line
// is an asr::Error naming the file and line number.
std::vector<nlohmann::json> read_metrics_log(const std::filesystem::path& path);

}  // namespace asr
