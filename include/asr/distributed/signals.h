// Preemption and interruption. Slurm sends SIGUSR1 (via --signal) or SIGTERM
// before killing a job, mpirun forwards SIGUSR1, a user types ^C. The handler
// only records the signal; ranks agree at a step boundary so that all of them
// checkpoint and stop together instead of one rank leaving the others hanging.
#pragma once
#include <string>

#include "asr/distributed/communicator.h"

namespace asr::distributed {

// Installs handlers for SIGUSR1, SIGTERM and SIGINT. A second SIGINT while a
// stop is pending restores the default action, so ^C ^C still kills.
void install_stop_signal_handlers();

// The first signal received by this process, or 0.
int local_stop_signal();
// Forgets a received signal (tests, or after the stop was handled).
void clear_stop_signal();

struct StopRequest {
  bool stop = false;
  int signal = 0;    // the signal of the lowest rank that got one
  int from_rank = -1;
  explicit operator bool() const { return stop; }
  std::string describe() const;  // e.g. "SIGUSR1 on rank 1"
};

// Collective: every rank gets the same answer. Call at a step boundary.
StopRequest stop_requested_anywhere(Communicator& comm);

}  // namespace asr::distributed
