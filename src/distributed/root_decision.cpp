#include "asr/distributed/root_decision.h"

#include <stdexcept>
#include <string>

#include "asr/core/error.h"

namespace asr::distributed {

namespace {

// The outcome travels as "<exit code>\n<message>"; empty means success.
std::string outcome_of(const std::function<void()>& work) {
  try {
    work();
    return "";
  } catch (const std::exception& e) {
    return std::to_string(exit_code_for(e)) + "\n" + e.what();
  }
}

[[noreturn]] void rethrow(const std::string& outcome, bool is_root) {
  const size_t nl = outcome.find('\n');
  const int code = std::stoi(outcome.substr(0, nl));
  const std::string message = (is_root ? "" : "rank 0: ") + outcome.substr(nl + 1);
  if (code == kExitData) throw DataError(message);
  if (code == kExitUsage) throw Error(message);
  throw std::runtime_error(message);
}

}  // namespace

void run_on_root_and_share_errors(Communicator& comm, const std::function<void()>& work) {
  std::string outcome;
  if (comm.is_root()) outcome = outcome_of(work);
  comm.broadcast_bytes(outcome);
  if (!outcome.empty()) rethrow(outcome, comm.is_root());
}

}  // namespace asr::distributed
