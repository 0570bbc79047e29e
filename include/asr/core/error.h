// User-facing errors. Every input a user can get wrong (a file, a config key,
// a flag, a checkpoint) is reported by throwing asr::Error with a message that
// names the thing and says how to fix it. Mains catch it, print it and exit
// with a non-zero status; nothing else should terminate the program.
#pragma once
#include <stdexcept>
#include <string>

namespace asr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Exit statuses shared by every binary and read by launch/ scripts.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // a runtime failure (I/O, a peer died, ...)
  kExitUsage = 2,        // bad flags, config or input
  kExitPreempted = 75,   // EX_TEMPFAIL: checkpointed after a signal, requeue me
};

}  // namespace asr
