// Logging setup shared by the binaries: spdlog to the console and, when a
// file is given, to that file as well. Library code just calls spdlog::info().
#pragma once
#include <string>

namespace asr {

// `console_level` is one of trace, debug, info, warn, error; `file` may be
// empty. `tag` is prefixed to every line (e.g. "rank 3") to tell ranks apart.
void setup_logging(const std::string& console_level = "info", const std::string& file = "",
                   const std::string& tag = "", bool console = true);

}  // namespace asr
