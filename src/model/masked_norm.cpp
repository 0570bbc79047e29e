#include "asr/model/masked_norm.h"

#include <torch/torch.h>

#include "asr/core/error.h"
#include "asr/model/pooled_batch_norm.h"

namespace asr::model {

NormKind parse_norm_kind(const std::string& name) {
  if (name == "batch") return NormKind::batch;
  if (name == "group") return NormKind::group;
  if (name == "layer") return NormKind::layer;
  throw asr::Error("model.frontend.norm: unknown norm '" + name + "'; use \"batch\", \"group\" or \"layer\"");
}

MaskedNormImpl::MaskedNormImpl(NormKind kind, int64_t channels, int64_t groups, double eps, double momentum)
    : kind_(kind), channels_(channels), groups_(groups), eps_(eps), momentum_(momentum) {
  if (kind_ == NormKind::group && (groups_ < 1 || channels_ % groups_ != 0)) {
    throw asr::Error("model.frontend.norm_groups: " + std::to_string(groups_) + " does not divide the " +
                     std::to_string(channels_) + " channels; pick a divisor");
  }
  weight_ = register_parameter("weight", torch::ones({channels_}));
  bias_ = register_parameter("bias", torch::zeros({channels_}));
  if (kind_ == NormKind::batch) {
    running_mean_ = register_buffer("running_mean", torch::zeros({channels_}));
    running_var_ = register_buffer("running_var", torch::ones({channels_}));
  }
}

std::vector<at::Tensor> MaskedNormImpl::forward(const std::vector<at::Tensor>& xs, bool relu) {
  if (kind_ == NormKind::batch && is_training()) {
    // Statistics of every valid frame of the batch (of the global batch when
    // synchronized), never of padding.
    auto moments = pooled_moments(xs, channels_, stats_);
    remember(moments.mean, moments.variance, moments.total);
    return pooled_batch_norm(xs, weight_, bias_, moments, eps_, relu, stats_);
  }
  auto out = normalize(xs);
  if (relu) {
    for (auto& y : out) y.relu_();  // no norm needs its output for its gradient
  }
  return out;
}

at::Tensor MaskedNormImpl::forward_batched(const at::Tensor& x, const at::Tensor& mask, int64_t frames, bool relu) {
  if (kind_ == NormKind::batch && is_training()) {
    PooledMoments moments;
    auto y = masked_batch_norm(x, mask, frames, weight_, bias_, eps_, relu, stats_, &moments);
    remember(moments.mean, moments.variance, moments.total);
    return y;
  }
  auto y = normalize_batched(x.to(at::kFloat), mask);
  if (relu) y = y.relu();
  return y * mask;
}

void MaskedNormImpl::remember(const at::Tensor& mean, const at::Tensor& variance, const at::Tensor& total) {
  pending_ = Pending{mean.detach(), variance.detach(), total.detach()};
}

void MaskedNormImpl::apply_pending_statistics() {
  if (!pending_.mean.defined()) return;
  torch::NoGradGuard no_grad;
  const auto& dev = running_mean_.device();
  auto total = pending_.total.to(dev, at::kDouble);
  // The unbiased variance, as torch's batch norm keeps it; computed where the
  // statistics live, so no host read.
  auto unbias = (total / (total - 1).clamp_min(1.0)).to(running_var_.scalar_type());
  running_mean_.mul_(1 - momentum_).add_(pending_.mean.to(dev, running_mean_.scalar_type()), momentum_);
  running_var_.mul_(1 - momentum_).add_(pending_.variance.to(dev, running_var_.scalar_type()) * unbias, momentum_);
  pending_ = Pending{};
}

void MaskedNormImpl::discard_pending_statistics() { pending_ = Pending{}; }

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

at::Tensor MaskedNormImpl::normalize_batched(const at::Tensor& x, const at::Tensor& mask) {
  auto w = weight_.view({1, -1, 1}).to(at::kFloat);
  auto b = bias_.view({1, -1, 1}).to(at::kFloat);
  if (kind_ == NormKind::group) {
    // Per utterance and group, over the group's channels and valid frames.
    const int64_t batch = x.size(0), t = x.size(2), per_group = channels_ / groups_;
    auto xg = x.view({batch, groups_, per_group, t});
    auto m = mask.view({batch, 1, 1, t});
    auto count = (mask.sum(at::IntArrayRef{1, 2}) * per_group).clamp_min(1).view({batch, 1, 1, 1});
    auto mean = (xg * m).sum(at::IntArrayRef{2, 3}, /*keepdim=*/true) / count;
    auto centered = (xg - mean) * m;
    auto var = centered.pow(2).sum(at::IntArrayRef{2, 3}, /*keepdim=*/true) / count;
    auto normalized = (centered * torch::rsqrt(var + eps_)).view({batch, channels_, t});
    return at::addcmul(b, normalized, w);
  }
  if (kind_ == NormKind::layer) {
    auto [var, mu] = at::var_mean(x, at::IntArrayRef{1}, /*unbiased=*/false, /*keepdim=*/true);
    return at::addcmul(b, (x - mu) * torch::rsqrt(var + eps_), w);
  }
  return std::get<0>(at::native_batch_norm(x, weight_.to(at::kFloat), bias_.to(at::kFloat), running_mean_.to(at::kFloat),
                                           running_var_.to(at::kFloat), /*training=*/false, 0.0, eps_));
}

}  // namespace asr::model
