// Cross-rank sums for statistics that must cover the global batch (batch
// norm's moments in forward and its gradient sums in backward), kept apart
// from the gradient buckets on a communicator of their own, and counted so a
// rank that ran out of memory mid-step can take part in the ones it missed.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace asr::distributed {
class Communicator;
}

namespace asr::model {

class BatchStatistics {
 public:
  // nullptr: statistics of this rank's batch alone (one rank, or evaluation).
  explicit BatchStatistics(distributed::Communicator* comm = nullptr) : comm_(comm) {}

  bool synchronized() const { return comm_ != nullptr; }
  // In-place sum over ranks (identity when not synchronized).
  void sum(at::Tensor& values);

  // The reductions this step has made so far; reset by begin_step.
  void begin_step() { done_ = 0; }
  int64_t done() const { return done_; }
  // Joins `sizes[done()..]` reductions with zeros: what the other ranks still
  // run in this step after this rank had to drop it.
  void complete_with_zeros(const std::vector<int64_t>& sizes);

 private:
  distributed::Communicator* comm_;
  int64_t done_ = 0;
};

}  // namespace asr::model
