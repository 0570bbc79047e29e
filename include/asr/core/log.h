// Logging setup shared by the binaries: spdlog to the console and, when a
// file is given, to that file as well. Library code just calls spdlog::info().
//
// A rank's log file must also say what ended the process: an error the main
// caught, a collective timeout, a stop signal, a crash. The last three can
// happen where spdlog must not run (signal handlers), so the file is also
// reachable through a raw descriptor and the *_signal_safe writer below.
#pragma once
#include <string>

namespace asr {

// `console_level` is one of trace, debug, info, warn, error; `file` may be
// empty. `tag` is prefixed to every line (e.g. "rank 3") to tell ranks apart.
void setup_logging(const std::string& console_level = "info", const std::string& file = "",
                   const std::string& tag = "", bool console = true);

// Whether setup_logging opened a log file.
bool log_file_open();

// One line into the log file only (not the console), flushed at once: for
// what a main has already printed on stderr. No-op without a log file.
void log_to_file(const std::string& level, const std::string& text);

// One line appended to `path` in the log's format, for a failure before
// setup_logging ran; only when the file's directory exists (never creates a
// run directory). Returns whether it was written.
bool append_log_line(const std::string& path, const std::string& level, const std::string& text);

// Async-signal-safe: one line "<time> <level> [tag] <text>" written with
// write(2) to the log file, and to stderr as well when `also_stderr`.
void log_line_signal_safe(const char* level, const char* text, bool also_stderr);

// Crash handlers that leave a last line in the log (and on stderr) before
// the process dies: SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT name the
// signal and re-raise it (the exit status and core dump stay the default
// ones); std::terminate (an exception nobody caught, often in a library's
// thread) writes the exception's message, then aborts. Install before
// MPI_Init: Open MPI leaves handlers it finds in place.
void install_crash_handlers();

}  // namespace asr
