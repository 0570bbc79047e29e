#include "asr/train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

MetricsLog::MetricsLog(const fs::path& path, std::optional<int64_t> resume_step) : path_(path) {
  std::error_code ec;
  if (resume_step && fs::exists(path, ec)) {
    std::istringstream in(read_file(path));
    std::string line, kept;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) continue;
      if (j.is_object() && j.contains("step") && j["step"].is_number() && j["step"].get<int64_t>() > *resume_step)
        continue;
      kept += line + "\n";
    }
    write_file_atomic(path, kept);
  }
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_) throw DataError("cannot open metrics log " + path.string() + ": " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw DataError("cannot write metrics log " + path_.string() + ": " + std::strerror(errno));
}

std::vector<nlohmann::json> read_metrics_log(const fs::path& path) {
  std::istringstream in(read_file(path));
  std::vector<nlohmann::json> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded())
      throw Error(path.string() + ":" + std::to_string(n) + ": not a JSON object (corrupt metrics log)");
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace asr
