#include "asr/model/masked_norm.h"

#include <torch/torch.h>

#include "asr/core/error.h"
#include "asr/model/pooled_batch_norm.h"

namespace asr::model {

NormKind parse_norm_kind(const std::string& name) {
  if (name == "batch") return NormKind::batch;
  if (name == "group") return NormKind::group;
  if (name == "layer") return NormKind::layer;
  throw asr::Error("model.frontend.norm: unknown norm '" + name +
                   "'; use \"batch\", \"group\" or \"layer\"");
}

MaskedNormImpl::MaskedNormImpl(NormKind kind, int64_t channels, int64_t groups, double eps,
                               double momentum)
    : kind_(kind), channels_(channels), groups_(groups), eps_(eps), momentum_(momentum) {
  if (kind_ == NormKind::group && (groups_ < 1 || channels_ % groups_ != 0)) {
    throw asr::Error("model.frontend.norm_groups: " + std::to_string(groups_) +
                     " does not divide the " + std::to_string(channels_) +
                     " channels; pick a divisor");
  }
  weight_ = register_parameter("weight", torch::ones({channels_}));
  bias_ = register_parameter("bias", torch::zeros({channels_}));
  if (kind_ == NormKind::batch) {
    running_mean_ = register_buffer("running_mean", torch::zeros({channels_}));
    running_var_ = register_buffer("running_var", torch::ones({channels_}));
  }
}

std::vector<at::Tensor> MaskedNormImpl::forward(const std::vector<at::Tensor>& xs, bool relu) {
  if (kind_ == NormKind::batch && is_training() && !xs.empty()) {
    // Statistics of every valid frame of the batch, never of padding.
    auto moments = pooled_moments(xs);
    {
      torch::NoGradGuard no_grad;
      const double total = static_cast<double>(moments.frames);
      const double unbias = total > 1 ? total / (total - 1) : 1.0;
      running_mean_.mul_(1 - momentum_).add_(moments.mean, momentum_);
      running_var_.mul_(1 - momentum_).add_(moments.variance * unbias, momentum_);
    }
    return pooled_batch_norm(xs, weight_, bias_, moments, eps_, relu);
  }
  auto out = normalize(xs);
  if (relu) {
    for (auto& y : out) y.relu_();  // no norm needs its output for its gradient
  }
  return out;
}

std::vector<at::Tensor> MaskedNormImpl::normalize(const std::vector<at::Tensor>& xs) {
  std::vector<at::Tensor> out;
  out.reserve(xs.size());
  if (kind_ == NormKind::group) {
    // The fused native kernel: one utterance is exactly one group-norm sample.
    for (const auto& x : xs) out.push_back(at::group_norm(x, groups_, weight_, bias_, eps_));
    return out;
  }
  if (kind_ == NormKind::layer) {
    auto w = weight_.view({1, -1, 1});
    auto b = bias_.view({1, -1, 1});
    for (const auto& x : xs) {
      auto [var, mu] = at::var_mean(x, at::IntArrayRef{1}, /*unbiased=*/false, /*keepdim=*/true);
      out.push_back(at::addcmul(b, (x - mu) * torch::rsqrt(var + eps_), w));
    }
    return out;
  }
  // Inference: the running statistics, one fused pass per map.
  for (const auto& x : xs) {
    out.push_back(std::get<0>(at::native_batch_norm(x, weight_, bias_, running_mean_, running_var_,
                                                    /*training=*/false, 0.0, eps_)));
  }
  return out;
}

}  // namespace asr::model
