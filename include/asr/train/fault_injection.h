// Faults on purpose, for tests and operator drills (docs/operations.md).
// Each is an environment variable naming the step (as logged, from 1) and
// the rank it hits:
//   ASR_FAULT_NAN=STEP:RANK                     that rank's loss is NaN at that step
//   ASR_FAULT_OOM=STEP:RANK[:forward|backward]  that rank runs out of device memory there
//   ASR_FAULT_DIVERGE=STEP:RANK                 that rank's parameters drift after that step's update
//   ASR_FAULT_SLOW=STEP:RANK:MS                 from that step on, that rank's forward takes MS ms longer
//   ASR_FAULT_SKIP_COLLECTIVE=STEP:RANK         that rank skips that step's decision all-reduce (a desync)
// Nothing is set in normal runs: the trainer then holds no injector and the
// training step never consults one.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace asr {

enum class StepPhase { forward, backward };

class FaultInjector {
 public:
  // nullptr when no fault variable is set; throws asr::Error naming a
  // malformed variable.
  static std::unique_ptr<FaultInjector> from_environment(int rank);

  // The loss, or NaN times it when a NaN fault hits (step, this rank).
  at::Tensor poison_loss(int64_t step, const at::Tensor& loss) const;
  // Throws the same c10::OutOfMemoryError a CUDA allocation failure throws.
  void out_of_memory(int64_t step, StepPhase phase) const;
  // Adds a small offset to one parameter, as a silent hardware or software
  // fault would; the checkpoint-time agreement check must then stop the run.
  void diverge(int64_t step, torch::nn::Module& model) const;
  // Sleeps when a slow fault covers (step, this rank): a straggler on purpose.
  void slow_down(int64_t step) const;
  // Whether this rank skips the step decision's all-reduce at that step.
  bool skip_collective(int64_t step) const;

  std::string describe() const;  // for the log: which faults are armed

 private:
  struct Fault {
    std::string variable;
    int64_t step = -1;
    int rank = -1;
    std::string phase;  // OOM only
    int64_t milliseconds = 0;  // SLOW only
  };
  bool hits(const Fault& f, int64_t step) const { return f.step == step && f.rank == rank_; }

  int rank_ = 0;
  std::vector<Fault> nan_, oom_, diverge_, slow_, skip_;
};

}  // namespace asr
