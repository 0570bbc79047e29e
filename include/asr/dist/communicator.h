// The one narrow interface through which every cross-rank operation goes:
// gradients, loss sums, RVQ statistics, evaluation counts, the agreement to
// skip a step or to stop. Callers never branch on the backend (Gloo, NCCL) or
// on the world size: a single process uses the local implementation, whose
// collectives are identities.
//
// Every collective is blocking with the configured timeout; a timeout or a
// dead peer throws asr::dist::CollectiveError naming this rank, the operation
// and the timeout.
#pragma once
#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "asr/core/error.h"

namespace asr::dist {

class CollectiveError : public asr::Error {
 public:
  using asr::Error::Error;
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

  // Conveniences built on the above (implemented once, in communicator.cpp).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  double all_reduce_sum(double value);
  double all_reduce_max(double value);
  bool any_rank(bool flag);  // true on every rank if it is true on any rank
  void broadcast_bytes(std::string& bytes, int root = 0);
  bool is_root() const { return rank() == 0; }
};

// World size 1: collectives are identities. Used by single-process runs and tests.
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace asr::dist
