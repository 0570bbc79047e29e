// Batch normalization over a list of per-utterance [1, C, L_i] maps with the
// statistics of all their frames pooled, as if they were one long utterance,
// optionally fused with the ReLU that follows it in the frontends.
// One autograd function for the whole list: the composite version (var_mean
// per map, pooled with tensor arithmetic, then a separate ReLU) cost a
// quarter of the seed-parity training step; on CPU float maps this one makes
// one pass for the statistics, one for the output and two for the gradient.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace asr::model {

struct PooledMoments {
  at::Tensor mean;      // [C]
  at::Tensor variance;  // [C], biased (divided by frames)
  int64_t frames = 0;
};

// Per-channel moments of every frame of every map; no autograd.
PooledMoments pooled_moments(const std::vector<at::Tensor>& xs);

// y = (x - mean) / sqrt(variance + eps) * weight + bias for each map, then
// max(y, 0) when `relu`; the gradient flows through the pooled statistics as
// in training-mode batch norm. `moments` must come from pooled_moments(xs).
std::vector<at::Tensor> pooled_batch_norm(const std::vector<at::Tensor>& xs, const at::Tensor& weight,
                                          const at::Tensor& bias, const PooledMoments& moments, double eps,
                                          bool relu);

}  // namespace asr::model
