// One decision per job: every rank's device and the one backend they all
// use. Each rank reports what it can use through the rendezvous store before
// any process group exists; every rank then reads every report and takes the
// same decision, or fails with the same message naming the ranks, within
// seconds, instead of half the job building NCCL and the other half Gloo and
// hanging until a timeout.
#pragma once
#include <string>
#include <vector>

namespace asr::distributed {

// What one rank reports.
struct DeviceReport {
  int rank = 0;
  std::string kind;      // "cuda" or "cpu"; empty when the rank reports a problem
  std::string backend;   // its dist.backend setting (every rank must ask for the same)
  std::string identity;  // host and GPU UUID: equal for two ranks on one GPU
  std::string problem;   // why this rank cannot take part as asked
};

struct WorldDecision {
  std::string backend;  // "nccl" or "gloo"
  std::string warning;  // for rank 0's log (e.g. GPUs shared, so Gloo)
};

// Throws asr::Error naming the ranks for a rank with a problem, ranks asking
// for different backends (dist.backend: auto, gloo, nccl), ranks on different
// kinds of device, NCCL asked for on CPUs, or NCCL with two ranks on one GPU
// (NCCL refuses that; "auto" falls back to Gloo with a warning).
WorldDecision decide_world(const std::vector<DeviceReport>& reports);

// DeviceReport <-> the text kept in the store.
std::string encode_report(const DeviceReport& report);
DeviceReport decode_report(int rank, const std::string& text);

// "0-3, 5, 7": rank lists for messages.
std::string describe_ranks(std::vector<int> ranks);

}  // namespace asr::distributed
