#include "asr/model/masked_norm.h"

#include <torch/torch.h>

#include "asr/core/error.h"

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

std::vector<at::Tensor> MaskedNormImpl::forward(const std::vector<at::Tensor>& xs) {
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
  at::Tensor mean, var;
  if (is_training() && !xs.empty()) {
    // Pool per-utterance moments weighted by frame counts: the statistics of
    // all valid frames of the batch, without concatenating them.
    at::Tensor sum, sumsq;
    double total = 0;
    for (const auto& x : xs) {
      auto [v, m] = at::var_mean(x, at::IntArrayRef{0, 2}, /*unbiased=*/false);
      const double n = static_cast<double>(x.size(2));
      sum = sum.defined() ? sum + m * n : m * n;
      sumsq = sumsq.defined() ? sumsq + (v + m * m) * n : (v + m * m) * n;
      total += n;
    }
    mean = sum / total;
    var = (sumsq / total - mean * mean).clamp_min(0.0);
    torch::NoGradGuard no_grad;
    const double unbias = total > 1 ? total / (total - 1) : 1.0;
    running_mean_.mul_(1 - momentum_).add_(mean.detach(), momentum_);
    running_var_.mul_(1 - momentum_).add_(var.detach() * unbias, momentum_);
  } else {
    mean = running_mean_;
    var = running_var_;
  }
  // y = x * a + c with a = gamma * rstd and c = beta - mean * a: one fused pass.
  auto a = torch::rsqrt(var + eps_) * weight_;
  auto c = (bias_ - mean * a).view({1, -1, 1});
  a = a.view({1, -1, 1});
  for (const auto& x : xs) out.push_back(at::addcmul(c, x, a));
  return out;
}

}  // namespace asr::model
