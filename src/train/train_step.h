// One optimizer step, in the shape of llm.c's training step: the global
// counts the loss is normalized by, then per micro-batch forward and
// backward-and-reduce, then the update. Private to src/train: the Trainer
// owns one and feeds it batches.
//
// Host synchronizations (docs/training.md): none inside forward and backward
// (every count is host arithmetic, statistics stay on the device), and one
// read per step in update(): the all-reduced decision (non-finite values,
// out-of-memory, stop signals, the loss shares for the log) with the global
// gradient norm, through Communicator::read_to_host.
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cstdint>
#include <string>
#include <vector>

#include "asr/distributed/communicator.h"
#include "asr/distributed/grad_sync.h"
#include "asr/distributed/signals.h"
#include "asr/model/asr_model.h"
#include "asr/model/batch_statistics.h"
#include "asr/train/batch_loader.h"
#include "asr/train/config.h"
#include "asr/train/device_feed.h"
#include "asr/train/fault_injection.h"

namespace asr {

// What one step leaves for the log; global values (summed over ranks).
struct StepRecord {
  double loss = 0, ctc = 0, vq = 0, grad_norm = 0;
  double audio_seconds = 0;
  int64_t skipped_utterances = 0;  // too short for their transcript, left out of the loss
  bool applied = false;            // false: every rank skipped the update
  bool nonfinite = false;          // skipped for a NaN or Inf somewhere
  int oom_ranks = 0;               // skipped because this many ranks ran out of memory (each logs its batch)
  double grads_ready_s = 0, allreduce_wait_s = 0;
  // Seconds of each phase on the host clock; with train.profile the device
  // is synchronized at every boundary (a diagnostic that costs speed), so
  // GPU work lands in its own phase instead of the next one that waits.
  double forward_s = 0, backward_s = 0, reduce_s = 0, update_s = 0;
  distributed::StopRequest stop;   // a stop signal seen on any rank during the step
};

// What the step needs besides the model and the optimizer.
struct StepParts {
  distributed::Communicator& comm;
  distributed::GradientSynchronizer& sync;
  const TrainConfig& cfg;
  const DeviceFeed& feed;
  model::BatchStatistics* batch_stats;  // the frontend's batch-norm sums (may be unsynchronized)
  const FaultInjector* faults;          // nullptr in normal runs
  bool bf16 = false;                    // autocast to bfloat16 in forward
};

class TrainStep {
 public:
  TrainStep(model::AsrModel model, torch::optim::AdamW& optimizer, StepParts parts);

  // Runs the optimizer step `step` (0-based) over its micro-batches.
  StepRecord run(std::vector<Batch>& micro_batches, int64_t step, double lr, double vq_weight);

 private:
  // Device tensors summed over this rank's micro-batches, and what went wrong.
  struct Local {
    at::Tensor ctc, vq, nonfinite;
    bool oom = false;
    std::string oom_detail;  // the utterances of the batch that did not fit
  };

  // [4 * micro-batches] global kept target tokens, frames, skipped
  // utterances and audio seconds, known before any forward pass.
  at::Tensor global_counts(const std::vector<Batch>& micro_batches);
  at::Tensor forward(Batch& batch, const at::Tensor& counts, int64_t step, double vq_weight, double micro_batches,
                     Local& local);
  void backward_and_reduce(const at::Tensor& loss, bool last_micro_batch);
  // The micro-batch loop; an out-of-memory error ends it on this rank only.
  void run_micro_batches(std::vector<Batch>& micro_batches, const at::Tensor& counts, int64_t step,
                         double vq_weight, Local& local);
  // This rank dropped the step: join what the others still run, with zeros.
  void join_remaining_collectives(size_t micro_batches_done, size_t micro_batches);
  StepRecord update(int64_t step, double lr, const Local& local, const at::Tensor& counts);
  void apply(StepRecord& r, int64_t step, double lr);
  // The step decision's all-reduce (skipped by ASR_FAULT_SKIP_COLLECTIVE).
  void reduce_decision(std::vector<at::Tensor>& decision, int64_t step);
  // Charges the host time since the last mark to `phase` (0 forward,
  // 1 backward, 2 reduce, 3 update); with train.profile it first waits for
  // the device.
  void profile_mark(int phase);

  model::AsrModel model_;
  torch::optim::AdamW& optimizer_;
  StepParts p_;
  c10::Device device_;
  int64_t last_mark_ns_ = 0;
  double phases_[4] = {0, 0, 0, 0};
};

// Whether an exception is a device running out of memory (LibTorch's own
// error, or cuBLAS/cuDNN failing to allocate their workspace).
bool is_out_of_memory(const std::exception& e);

}  // namespace asr
