// Data-parallel gradient synchronisation in the manner of PyTorch DDP:
// gradients are packed into buckets (parameters in reverse order, so the
// first bucket fills first during backward; a small first bucket starts
// communication early) and each bucket's all-reduce starts as soon as its
// last gradient is accumulated, overlapping communication with the rest of
// backward. Buckets launch strictly in index order on every rank, so the
// collectives always match.
//
// When the gradients live where the collectives run and travel in their own
// type (NCCL and CUDA parameters, Gloo and CPU ones), each bucket is one flat
// buffer and every parameter's .grad is a view into it: backward accumulates
// straight into the bucket and the reduced sum is the gradient, with no copy
// in or out. Otherwise (bf16 compression, or Gloo with CUDA parameters)
// gradients are copied into wire buffers and back.
//
// Per optimizer step:
//   sync.begin_step(last_micro_batch);   // false: accumulate locally, no traffic
//   forward, backward
//   sync.finish_step();                  // after the last micro-batch: waits, scales, .grad holds the sum
//   ... optimizer step ...
//   sync.zero_grad();                    // instead of the optimizer's: keeps the views
// A rank that must drop the step after an error (out of memory) calls
// finish_step_with_zeros(): it joins every bucket not yet launched with zeros,
// so the collectives of the step still match on every rank.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "asr/distributed/communicator.h"
#include "asr/distributed/options.h"

namespace asr::distributed {

struct GradSyncTimings {
  double ready_s = 0;   // begin_step -> every gradient ready (compute, and a rank's lateness)
  double wait_s = 0;    // blocked in finish_step waiting for the all-reduces (exposed communication)
  int buckets_in_backward = 0;  // buckets launched before finish_step
};

// Bucket layout: indices into `params`, reverse order, split by dtype and device.
std::vector<std::vector<size_t>> assign_buckets(const std::vector<at::Tensor>& params, double first_bucket_mb,
                                                double bucket_mb);

class GradientSynchronizer {
 public:
  // `params` must require grad and stay alive as long as this object; the
  // same list (same order and shapes) on every rank.
  GradientSynchronizer(Communicator& comm, std::vector<at::Tensor> params, GradSyncOptions options = {});
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  // Call before the forward of every micro-batch; `synchronize` only on the
  // last one of an optimizer step.
  void begin_step(bool synchronize);
  // Multiplies the summed gradients, e.g. by 1 / (global frame count).
  void set_scale(double scale);
  // After the synchronised backward: launches what is left (a parameter
  // without a gradient contributes its current .grad, or zeros), waits for
  // all buckets and leaves the scaled sums in every parameter's .grad. On a
  // GPU the wait is the compute stream's, not the host's. Every rank must call
  // it (or finish_step_with_zeros) for every synchronised step.
  void finish_step();
  void finish_step_with_zeros();
  // Zeroes every gradient (views stay views).
  void zero_grad();
  // True when .grad tensors are views into the bucket buffers.
  bool gradients_are_bucket_views() const;

  const GradSyncTimings& last_timings() const;
  const std::vector<std::vector<size_t>>& buckets() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Copies rank 0's values of `tensors` (parameters, then buffers) to every
// rank, after checking that all ranks hold the same count, shapes and dtypes;
// a mismatch throws asr::Error on every rank naming the rank, the tensor
// index and both shapes.
void broadcast_parameters_and_buffers(Communicator& comm, const std::vector<at::Tensor>& tensors);

// CRC-32C over the bytes of `tensors`, as a double (exact up to 2^53).
double parameter_checksum(const std::vector<at::Tensor>& tensors);
// Compares parameter_checksum across ranks; throws asr::Error on every rank
// naming the ranks whose parameters differ from rank 0's.
void check_parameters_agree(Communicator& comm, const std::vector<at::Tensor>& tensors);

}  // namespace asr::distributed
