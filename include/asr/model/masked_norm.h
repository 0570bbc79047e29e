// Normalization for frontend feature maps held as one [1, C, L_b] tensor per
// utterance (the frontend runs each utterance at its own length, so no
// statistic ever sees padding).
//   batch: per-channel statistics over every utterance's frames; running
//          statistics are buffers (broadcast by the distributed trainer).
//   group: per-utterance statistics over (channels of a group, frames).
//   layer: per-frame statistics over channels.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

namespace asr::model {

enum class NormKind { batch, group, layer };

// Throws asr::Error naming the value for anything but "batch", "group", "layer".
NormKind parse_norm_kind(const std::string& name);

class MaskedNormImpl : public torch::nn::Module {
 public:
  MaskedNormImpl(NormKind kind, int64_t channels, int64_t groups, double eps = 1e-5,
                 double momentum = 0.1);

  // Each element [1, C, L_b] with L_b >= 1; returns the normalized maps,
  // passed through a ReLU when `relu` (fused with training-mode batch norm).
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& xs, bool relu = false);

  NormKind kind() const { return kind_; }

 private:
  // Everything but training-mode batch norm.
  std::vector<at::Tensor> normalize(const std::vector<at::Tensor>& xs);
  NormKind kind_;
  int64_t channels_;
  int64_t groups_;
  double eps_;
  double momentum_;
  at::Tensor weight_, bias_;
  at::Tensor running_mean_, running_var_;
};
TORCH_MODULE(MaskedNorm);

}  // namespace asr::model
