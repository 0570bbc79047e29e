#include "asr/core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <vector>

#include "asr/core/error.h"

namespace asr {

void setup_logging(const std::string& console_level, const std::string& file, const std::string& tag,
                   bool console) {
  std::vector<spdlog::sink_ptr> sinks;
  if (console) {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto level = spdlog::level::from_str(console_level);
    if (level == spdlog::level::off && console_level != "off")
      throw Error("unknown log level '" + console_level + "' (use trace, debug, info, warn, error or off)");
    sink->set_level(level);
    sinks.push_back(sink);
  }
  if (!file.empty()) {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
      sink->set_level(spdlog::level::debug);
      sinks.push_back(sink);
    } catch (const spdlog::spdlog_ex& e) {
      throw Error("cannot open log file " + file + ": " + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("asr", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  std::string prefix = tag.empty() ? "" : "[" + tag + "] ";
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ " + prefix + "%v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace asr
