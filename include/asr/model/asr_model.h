// The whole recognizer: frontend -> transformer encoder -> residual VQ
// (optional) -> linear CTC head with log-softmax. Built from ModelConfig.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "asr/model/encoder.h"
#include "asr/model/frontend.h"
#include "asr/model/model_config.h"
#include "asr/model/rvq.h"

namespace asr::distributed {
class Communicator;
}

namespace asr::model {

struct ModelOutput {
  // [B, T', V] batch-first log-softmax, T' = max(out_lengths); frames past an
  // utterance's out_length are padding (ctc_loss_sum and decoders use the lengths).
  at::Tensor log_probs;
  at::Tensor out_lengths;  // [B] int64 valid frames per utterance
  at::Tensor vq_loss;      // scalar (zero when RVQ is disabled)
  RvqMetrics metrics;      // empty vectors when RVQ is disabled
};

class AsrModelImpl : public torch::nn::Module {
 public:
  // Throws asr::Error naming the config key for an unusable configuration.
  explicit AsrModelImpl(const ModelConfig& cfg);

  // waveform: [B, T] float, zero-padded or not; lengths: [B] int64 samples.
  // train = true puts the module in training mode (dropout, batch-norm
  // statistics) and lets the quantizer update its codebooks, which runs
  // collectives on the communicator; false = eval mode, no collectives.
  // utterance_keys: [B] int64 identifying utterances across ranks (dataset
  // indices); they make the RVQ's candidate sampling world-size independent.
  ModelOutput forward(const at::Tensor& waveform, const at::Tensor& lengths, bool train,
                      const at::Tensor& utterance_keys = {});

  at::Tensor output_lengths(const at::Tensor& input_lengths) const { return frontend_->output_lengths(input_lengths); }
  void set_communicator(distributed::Communicator* comm);
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
