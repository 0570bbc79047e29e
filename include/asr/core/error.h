// User-facing errors. Every input a user can get wrong (a file, a config key,
// a flag, a checkpoint) is reported by throwing asr::Error, or one of the
// kinds below, with a message that names the thing and says how to fix it.
// Mains catch it, print it and exit with the status of its kind, so an
// operator (or a launch script) can tell what happened from the status alone.
#pragma once
#include <exception>
#include <stdexcept>
#include <string>

namespace asr {

// Exit statuses shared by every binary and read by launch/ scripts
// (docs/operations.md lists them).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // an unexpected failure (a bug, or an error of a library we did not anticipate)
  kExitUsage = 2,        // bad flags, config or options
  kExitData = 3,         // unusable input data: dataset, audio, checkpoint files
  kExitDistributed = 4,  // a peer rank died or hung, or the ranks could not form a group
  kExitDivergence = 5,   // replicas no longer hold the same parameters
  kExitPreempted = 75,   // EX_TEMPFAIL: checkpointed after a signal, requeue me
};

// A usage or configuration error (exit status 2).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  virtual ExitCode exit_code() const { return kExitUsage; }
};

// An input file that cannot be used as it is (exit status 3).
class DataError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return kExitData; }
};

// Ranks whose parameters differ where they must be equal (exit status 5).
class DivergenceError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return kExitDivergence; }
};

// The status a main returns for an exception: its kind's for asr::Error,
// kExitFailure for anything else.
inline int exit_code_for(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return error->exit_code();
  return kExitFailure;
}

}  // namespace asr
