// What the flight recorder and dist.check_collectives cost, on 2 Gloo ranks
// (threads of this process, loopback):
//   1. recording alone: flight_issue + flight_complete pairs from 2 threads at
//      once (the lock they share included), ns per collective;
//   2. the smallest real collective: a 1-element all_reduce, which records
//      itself; the recording's share of it is (1) / (2);
//   3. the same all_reduces with dist.check_collectives: the ratio to (2).
// A training step runs a handful of collectives (the gradient buckets plus
// three small ones), so (1) times that count against a step's time is the
// recorder's overhead per step; docs/distributed.md quotes a run of this.
//
// Usage: flight_recorder_cost [--collectives N]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "asr/distributed/bootstrap.h"
#include "asr/distributed/flight_recorder.h"

namespace {
using namespace asr::distributed;
using Clock = std::chrono::steady_clock;

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ns per issue/complete pair, with `threads` threads recording at once.
double recording_ns(int n, int threads) {
  std::vector<std::future<double>> runs;
  for (int t = 0; t < threads; ++t)
    runs.push_back(std::async(std::launch::async, [n] {
      FlightNote note("benchmark");
      const auto start = Clock::now();
      for (int i = 0; i < n; ++i)
        flight_complete(flight_issue({"bench", uint64_t(i), "all_reduce", "float32", 1}), FlightState::done);
      return seconds_since(start);
    }));
  double worst = 0;
  for (auto& r : runs) worst = std::max(worst, r.get());
  return worst / n * 1e9;
}

// Seconds per 1-element all_reduce on 2 ranks (the slower rank's figure).
double all_reduce_seconds(int n, bool check) {
  const int port = free_port();
  std::vector<std::future<double>> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(std::async(std::launch::async, [=] {
      DistOptions o;
      o.backend = "gloo";
      o.timeout_seconds = 60;
      LaunchInfo info;
      info.launcher = Launcher::torchrun;
      info.rank = r;
      info.world_size = 2;
      info.local_rank = r;
      info.local_world_size = 2;
      info.master_addr = "127.0.0.1";
      info.master_port = port;
      auto comm = make_communicator(o, info);
      comm->check_collectives(check);
      std::vector<at::Tensor> one{at::ones({1})};
      for (int i = 0; i < 50; ++i) comm->all_reduce_sum(one);  // warm-up
      comm->barrier();
      const auto start = Clock::now();
      for (int i = 0; i < n; ++i) comm->all_reduce_sum(one);
      const double s = seconds_since(start);
      comm->barrier();
      return s;
    }));
  double worst = 0;
  for (auto& r : ranks) worst = std::max(worst, r.get());
  return worst / n;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 5000;
  for (int i = 1; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], "--collectives")) n = std::atoi(argv[i + 1]);
  at::set_num_threads(1);
  const double record_ns = recording_ns(200000, 2);
  // Alternating rounds, the best of each: other load on the cores only adds.
  double plain = 1e9, checked = 1e9;
  for (int round = 0; round < 3; ++round) {
    plain = std::min(plain, all_reduce_seconds(n, false));
    checked = std::min(checked, all_reduce_seconds(n, true));
  }
  std::printf("recording: %.0f ns per collective (2 threads recording at once)\n", record_ns);
  std::printf("1-element all_reduce, 2 Gloo ranks: %.1f us (recording is %.2f%% of it)\n", plain * 1e6,
              100 * record_ns * 1e-9 / plain);
  std::printf("with dist.check_collectives: %.1f us (%.2fx)\n", checked * 1e6, checked / plain);
  std::printf("per step of K collectives taking T ms: recorder overhead = K x %.0f ns / T\n", record_ns);
  return 0;
}
