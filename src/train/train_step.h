// One optimizer step, in the shape of llm.c's training step: the global
// counts the loss is normalized by, then per micro-batch forward and
// backward-and-reduce, then the update. Private to src/train: the Trainer
// owns one and feeds it batches.
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cstdint>
#include <vector>

#include "asr/distributed/communicator.h"
#include "asr/distributed/grad_sync.h"
#include "asr/distributed/signals.h"
#include "asr/model/asr_model.h"
#include "asr/train/batch_loader.h"
#include "asr/train/config.h"
#include "asr/train/fault_injection.h"

namespace asr {

// What one step leaves for the log; global values (summed over ranks).
struct StepRecord {
  double loss = 0, ctc = 0, vq = 0, grad_norm = 0;
  double audio_seconds = 0;
  int64_t skipped_utterances = 0;  // too short for their transcript, left out of the loss
  bool applied = false;            // false: every rank skipped the update
  bool nonfinite = false;          // why it was skipped
  double grads_ready_s = 0, allreduce_wait_s = 0;
  std::vector<double> perplexity;
  distributed::StopRequest stop;   // a stop signal seen on any rank during the step
};

class TrainStep {
 public:
  TrainStep(model::AsrModel model, torch::optim::AdamW& optimizer, distributed::Communicator& comm,
            distributed::GradientSynchronizer& sync, const TrainConfig& config, const FaultInjector* faults);

  // Runs the optimizer step `step` (0-based) over its micro-batches.
  StepRecord run(std::vector<Batch>& micro_batches, int64_t step, double lr, double vq_weight);

 private:
  // Global sums over every rank's micro-batches, known before any forward pass.
  struct Counts {
    double kept_tokens = 1, frames = 1, skipped = 0, audio_seconds = 0;
  };
  // Device tensors summed over the micro-batches of this rank.
  struct Local {
    at::Tensor ctc, vq, nonfinite;
    std::vector<double> perplexity;
  };

  std::vector<Counts> global_counts(const std::vector<Batch>& micro_batches);
  at::Tensor forward(Batch& batch, const Counts& counts, int64_t step, double vq_weight, double micro_batches,
                     Local& local);
  void backward_and_reduce(const at::Tensor& loss, bool last_micro_batch);
  StepRecord update(int64_t step, double lr, const Local& local);

  model::AsrModel model_;
  torch::optim::AdamW& optimizer_;
  distributed::Communicator& comm_;
  distributed::GradientSynchronizer& sync_;
  const TrainConfig& cfg_;
  const FaultInjector* faults_;
};

}  // namespace asr
