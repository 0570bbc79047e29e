// The one narrow interface through which every cross-rank operation goes:
// gradients, loss sums, RVQ statistics, evaluation counts, the agreement to
// skip a step or to stop. Callers never branch on the backend (Gloo, NCCL) or
// on the world size: a single process uses the local implementation, whose
// collectives are identities.
//
// Every collective is blocking with the configured timeout; a timeout or a
// dead peer throws asr::distributed::CollectiveError naming this rank, the operation
// and the timeout.
#pragma once
#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "asr/core/error.h"

namespace asr::distributed {

// A collective that timed out or lost a peer, or a group that could not
// form (exit status 4).
class CollectiveError : public asr::Error {
 public:
  using asr::Error::Error;
  ExitCode exit_code() const override { return kExitDistributed; }
};

// An asynchronous all_reduce_sum in flight. wait() blocks until it is done
// (its deadline counts from the launch) and throws CollectiveError on a
// timeout or a dead peer. The tensors given at launch must stay alive and
// untouched until wait() returns.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;
  // "gloo", "nccl" or "local"; for logs only, never for branching.
  virtual std::string backend_name() const = 0;

  // In-place sum over ranks of each tensor (same shapes and order on every rank).
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // In-place copy of root's tensors to every rank.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root = 0) = 0;
  // Gathers one tensor of identical shape from every rank; result[r] is rank r's.
  virtual std::vector<at::Tensor> all_gather(const at::Tensor& tensor) = 0;
  virtual void barrier() = 0;

  // Where collectives run: CPU for Gloo and local, cuda:local_rank for NCCL.
  // Tensors elsewhere are accepted (copied over and back), just slower.
  virtual c10::Device device() const { return c10::Device(c10::kCPU); }
  // Starts an in-place sum and returns at once; the default is blocking.
  // Used by GradientSynchronizer to overlap buckets with backward.
  virtual std::unique_ptr<PendingReduce> all_reduce_sum_async(std::vector<at::Tensor>& tensors);
  // Whether all_reduce_sum accepts bfloat16 (Debian's Gloo does not).
  virtual bool supports_bfloat16() const { return true; }
  // The timeout every collective is given.
  virtual std::chrono::milliseconds timeout() const { return std::chrono::milliseconds(0); }
  // dist.check_collectives: before each collective the ranks compare what
  // they are about to run; a difference is a CollectiveError naming both.
  // Groups made later by new_group inherit it. Nothing to check with one rank.
  virtual void check_collectives(bool) {}

  // A second group of the same ranks, for collectives that must not queue
  // behind (or interleave with) this group's, e.g. batch-norm statistics
  // beside the gradient buckets. Every rank must create it, in the same order.
  virtual std::unique_ptr<Communicator> new_group(const std::string& name) = 0;

  // Copies a result of collectives to the host, bounded by the collective
  // timeout: on a GPU this is where the host waits for the device (and for
  // peers), so a dead peer ends the process with a message naming this rank
  // instead of a silent hang. Counts every call (host_reads()), which is how
  // tests hold the training step to its budget of host synchronizations.
  virtual at::Tensor read_to_host(const at::Tensor& tensor, const std::string& what);
  int64_t host_reads() const { return host_reads_; }

  // Conveniences built on the above (implemented once, in communicator.cpp).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  double all_reduce_sum(double value);
  double all_reduce_max(double value);
  bool any_rank(bool flag);  // true on every rank if it is true on any rank
  void broadcast_bytes(std::string& bytes, int root = 0);
  bool is_root() const { return rank() == 0; }

 protected:
  int64_t host_reads_ = 0;
};

// World size 1: collectives are identities. Used by single-process runs and tests.
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace asr::distributed
