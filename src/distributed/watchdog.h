// Last line of defence against a job that hangs forever. Collectives honour
// their timeout in the normal case; this thread covers what does not (a Gloo
// worker stuck on a peer that stopped without closing its sockets, a store
// that never answers, MPI_Finalize waiting on a dead rank). Anything guarded
// that outlives its deadline makes the process log the rank and the operation
// and _exit(kExitFailure), so the launcher tears the whole job down.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace asr::distributed {

class WatchdogGuard {
 public:
  // Arms a deadline `limit` from now for `op` on `rank`; disarmed on destruction.
  WatchdogGuard(std::string op, int rank, std::chrono::milliseconds limit);
  ~WatchdogGuard();
  WatchdogGuard(const WatchdogGuard&) = delete;
  WatchdogGuard& operator=(const WatchdogGuard&) = delete;

 private:
  uint64_t id_;
};

// After a collective failed the process must exit soon: arms a deadline that
// is never disarmed, so cleanup that blocks on a broken peer cannot hang.
void watchdog_arm_exit_deadline(const std::string& reason, int rank, std::chrono::milliseconds limit);

}  // namespace asr::distributed
