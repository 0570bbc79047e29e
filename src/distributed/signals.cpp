#include "asr/distributed/signals.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstring>

#include "asr/core/log.h"

namespace asr::distributed {
namespace {

// Lock-free atomics are async-signal-safe; this is all the handler touches.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal flag must be lock-free");

const char* stop_line(int sig) {
  switch (sig) {
    case SIGUSR1: return "received SIGUSR1: every rank checkpoints at the next step boundary, then exits 75";
    case SIGTERM: return "received SIGTERM: every rank checkpoints at the next step boundary, then exits 75";
    case SIGINT: return "received SIGINT: every rank checkpoints at the next step boundary, then exits 75";
  }
  return "received a stop signal: every rank checkpoints at the next step boundary, then exits 75";
}

// Only async-signal-safe calls: an atomic and write(2) into the log file, so
// that the rank's own log says which signal stopped it and when.
extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) {
    log_line_signal_safe("warning", stop_line(sig), /*also_stderr=*/false);
  } else if (sig == SIGINT) {
    // Second ^C: the user means it.
    log_line_signal_safe("warning", "received a second SIGINT: exiting at once, without a checkpoint", false);
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // interrupted reads and waits resume instead of failing
  for (int sig : {SIGUSR1, SIGTERM, SIGINT}) sigaction(sig, &action, nullptr);
}

int local_stop_signal() { return g_signal.load(); }

void clear_stop_signal() { g_signal.store(0); }

std::string StopRequest::describe() const {
  if (!stop) return "no stop requested";
  const char* name = signal == SIGUSR1 ? "SIGUSR1" : signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : nullptr;
  return fmt::format("{} on rank {}", name ? name : fmt::format("signal {}", signal), from_rank);
}

StopRequest stop_requested_anywhere(Communicator& comm) {
  const int mine = local_stop_signal();
  StopRequest request;
  if (comm.world_size() == 1) {
    if (mine) request = StopRequest{true, mine, comm.rank()};
    return request;
  }
  const auto all = comm.all_gather(at::full({1}, double(mine), at::TensorOptions().dtype(at::kDouble)));
  for (size_t r = 0; r < all.size(); ++r) {
    const int sig = int(all[r].item<double>());
    if (sig != 0) return StopRequest{true, sig, int(r)};
  }
  return request;
}

}  // namespace asr::distributed
