// Last line of defence against a job that hangs forever. Collectives honour
// their timeout in the normal case; this thread covers what does not (a Gloo
// worker stuck on a peer that stopped without closing its sockets, a store
// that never answers, MPI_Finalize waiting on a dead rank). Anything guarded
// that outlives its deadline makes the process log the rank and the operation
// and _exit(kExitDistributed) (status 4), so the launcher tears the whole job down.
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

// The guarded operations in flight, e.g. "'all_reduce', 'all_reduce (bucket)'";
// empty when there are none (or the registry is busy: never blocks).
std::string watchdog_operations_in_flight();

// An exception escaping one of Gloo's transport threads (a peer sent a
// message of another size than this rank expected: the ranks ran different
// collectives) would std::terminate the process with SIGABRT. This handler
// makes it end like any distributed failure instead: a line on stderr and in
// the log naming the rank and the operations in flight, exit status 4. Other
// uncaught exceptions go to the handler installed before. Process-wide.
void install_collective_terminate_handler(int rank);

}  // namespace asr::distributed
