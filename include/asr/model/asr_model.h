// The whole recognizer: frontend -> transformer encoder -> residual VQ
// (optional) -> linear CTC head with log-softmax. Built from ModelConfig.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "asr/model/batch_statistics.h"
#include "asr/model/encoder.h"
#include "asr/model/kernel_path.h"
#include "asr/model/frontend.h"
#include "asr/model/model_config.h"
#include "asr/model/rvq.h"

namespace asr::distributed {
class Communicator;
}

namespace asr::model {

struct ModelOutput {
  // [B, T', V] batch-first log-softmax in float32, T' = max(out_lengths);
  // frames past an utterance's out_length are padding (ctc_loss_sum and
  // decoders use the lengths).
  at::Tensor log_probs;
  at::Tensor out_lengths;  // [B] int64 valid frames per utterance, on the CPU
  at::Tensor vq_loss;      // scalar (zero when RVQ is disabled)
  at::Tensor encoded;      // [B, T', d_model] encoder output (before the RVQ)
};

class AsrModelImpl : public torch::nn::Module {
 public:
  // Throws asr::Error naming the config key for an unusable configuration.
  explicit AsrModelImpl(const ModelConfig& cfg);

  // waveform: [B, T] float on the model's device, zero-padded or not;
  // lengths: [B] int64 samples on the CPU (frame counts are host arithmetic,
  // so the forward never waits for the device). train = true puts the module
  // in training mode (dropout, batch statistics) and keeps the step's
  // statistics pending (see below); false = eval mode, nothing pending.
  // utterance_keys: [B] int64 (CPU) identifying utterances across ranks
  // (dataset indices); they make the RVQ's candidate sampling world-size
  // independent.
  ModelOutput forward(const at::Tensor& waveform, const at::Tensor& lengths, bool train,
                      const at::Tensor& utterance_keys = {});

  // K-means initialization of the RVQ codebooks from this batch's encoder
  // output (evaluation mode, no gradient; collectives on every rank). The
  // trainer runs it before its first step; a no-op once initialized.
  void initialize_codebooks(const at::Tensor& waveform, const at::Tensor& lengths, const at::Tensor& utterance_keys);

  // Statistics of the last training forward (RVQ usage and EMA sums,
  // batch-norm running statistics): summed over ranks, then applied when the
  // step is, or discarded with it.
  void reduce_step_statistics();
  void apply_step_statistics();
  void discard_step_statistics();

  at::Tensor output_lengths(const at::Tensor& input_lengths) const { return frontend_->output_lengths(input_lengths); }
  // The communicator of the RVQ statistics, and the batch statistics of the
  // frontend's batch norms (nullptr: this rank alone).
  void set_communicator(distributed::Communicator* comm);
  void set_batch_statistics(BatchStatistics* stats);
  // Sizes of the cross-rank sums batch norm makes in one training forward
  // and backward, in order (for a rank that must join them with zeros).
  std::vector<int64_t> batch_statistics_sizes() const;
  void set_kernel_path(KernelPath path);
  // For logs: the RVQ's last applied statistics (a host read); empty without an RVQ.
  RvqMetrics rvq_metrics() const;
  const ModelConfig& config() const { return cfg_; }
  Frontend& frontend() { return *frontend_; }
  const Frontend& frontend() const { return *frontend_; }
  ResidualVQ& rvq() { return rvq_; }

 private:
  ModelConfig cfg_;
  std::shared_ptr<Frontend> frontend_;
  TransformerEncoder encoder_{nullptr};
  ResidualVQ rvq_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(AsrModel);

// Trainable parameters (elements), for logs and the README.
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace asr::model
