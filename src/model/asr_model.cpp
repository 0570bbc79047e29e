#include "asr/model/asr_model.h"

#include <torch/torch.h>

#include "asr/core/error.h"
#include "asr/model/cpu_convolution_check.h"
#include "asr/model/packed_frames.h"

namespace asr::model {

AsrModelImpl::AsrModelImpl(const ModelConfig& cfg) : cfg_(cfg) {
  check_cpu_convolution_gradients();  // once per process; see its header
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

void AsrModelImpl::set_batch_statistics(BatchStatistics* stats) {
  for (auto norm : frontend_->norms()) norm->set_batch_statistics(stats);
}

std::vector<int64_t> AsrModelImpl::batch_statistics_sizes() const {
  // Forward: each batch norm once, in order; backward: the same in reverse.
  std::vector<int64_t> sizes;
  for (const auto& norm : frontend_->norms())
    if (norm->kind() == NormKind::batch) sizes.push_back(2 * norm->channels() + 1);
  const size_t forward = sizes.size();
  for (size_t i = forward; i-- > 0;) sizes.push_back(sizes[i]);
  return sizes;
}

void AsrModelImpl::set_kernel_path(KernelPath path) {
  frontend_->set_kernel_path(path);
  encoder_->set_kernel_path(path);
}

ModelOutput AsrModelImpl::forward(const at::Tensor& waveform, const at::Tensor& lengths, bool train,
                                  const at::Tensor& utterance_keys) {
  if (waveform.dim() != 2 || lengths.dim() != 1 || lengths.size(0) != waveform.size(0)) {
    throw asr::Error("AsrModel::forward: expects waveform [B, T] and lengths [B]");
  }
  if (is_training() != train) this->train(train);
  auto lens = lengths.to(torch::kCPU, torch::kLong);
  auto fe = frontend_->forward(waveform, lens);
  ModelOutput out;
  out.encoded = encoder_->forward(fe.features, fe.lengths);
  auto h = out.encoded;
  if (rvq_) {
    auto q = rvq_->forward(h, fe.lengths, train, utterance_keys);
    h = q.quantized;
    out.vq_loss = q.loss;
  } else {
    out.vq_loss = torch::zeros({}, h.options().dtype(torch::kFloat));
  }
  // log-softmax in float32 whatever the autocast precision of the head.
  out.log_probs = torch::log_softmax(head_->forward(h).to(torch::kFloat), -1);
  out.out_lengths = fe.lengths;
  return out;
}

void AsrModelImpl::initialize_codebooks(const at::Tensor& waveform, const at::Tensor& lengths,
                                        const at::Tensor& utterance_keys) {
  if (!rvq_ || rvq_->initialized()) return;
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  this->eval();
  auto lens = lengths.to(torch::kCPU, torch::kLong);
  auto fe = frontend_->forward(waveform, lens);
  auto h = encoder_->forward(fe.features, fe.lengths);
  // The RVQ's training forward initializes it from these rows, then the
  // statistics it left are dropped: this pass is not a step.
  rvq_->train();
  rvq_->forward(h, fe.lengths, /*train=*/true, utterance_keys);
  rvq_->discard_statistics();
  this->train(was_training);
}

void AsrModelImpl::reduce_step_statistics() {
  if (rvq_) rvq_->reduce_statistics();
}

void AsrModelImpl::apply_step_statistics() {
  if (rvq_) rvq_->apply_statistics();
  for (auto norm : frontend_->norms()) norm->apply_pending_statistics();
}

void AsrModelImpl::discard_step_statistics() {
  if (rvq_) rvq_->discard_statistics();
  for (auto norm : frontend_->norms()) norm->discard_pending_statistics();
}

RvqMetrics AsrModelImpl::rvq_metrics() const { return rvq_ ? rvq_->metrics() : RvqMetrics{}; }

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

}  // namespace asr::model
