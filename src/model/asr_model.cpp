#include "asr/model/asr_model.h"

#include <torch/torch.h>

#include "asr/core/error.h"

namespace asr::model {

AsrModelImpl::AsrModelImpl(const ModelConfig& cfg) : cfg_(cfg) {
  if (cfg.vocab_size < 2) {
    throw asr::Error("model.vocab_size: " + std::to_string(cfg.vocab_size) +
                     " is too small; it comes from the tokenizer (blank + at least one token)");
  }
  if (cfg.sample_rate < 1) throw asr::Error("model.sample_rate: must be positive");
  frontend_ = register_module("frontend", make_frontend(cfg));
  encoder_ = register_module("encoder", TransformerEncoder(cfg.encoder));
  if (cfg.rvq.enabled) rvq_ = register_module("rvq", ResidualVQ(cfg.rvq, cfg.encoder.d_model));
  head_ = register_module("head", torch::nn::Linear(cfg.encoder.d_model, cfg.vocab_size));
}

void AsrModelImpl::set_communicator(distributed::Communicator* comm) {
  if (rvq_) rvq_->set_communicator(comm);
}

ModelOutput AsrModelImpl::forward(const at::Tensor& waveform, const at::Tensor& lengths, bool train,
                                  const at::Tensor& utterance_keys) {
  if (waveform.dim() != 2 || lengths.dim() != 1 || lengths.size(0) != waveform.size(0)) {
    throw asr::Error("AsrModel::forward: expects waveform [B, T] and lengths [B]");
  }
  if (is_training() != train) this->train(train);
  auto lens = lengths.to(torch::kLong);
  auto fe = frontend_->forward(waveform, lens);
  auto h = encoder_->forward(fe.features, fe.lengths);
  ModelOutput out;
  if (rvq_) {
    auto q = rvq_->forward(h, fe.lengths, train, utterance_keys);
    h = q.quantized;
    out.vq_loss = q.loss;
    out.metrics = std::move(q.metrics);
  } else {
    out.vq_loss = torch::zeros({}, h.options());
  }
  out.log_probs = torch::log_softmax(head_->forward(h), -1);
  out.out_lengths = fe.lengths;
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

}  // namespace asr::model
