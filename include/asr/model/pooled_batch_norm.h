// Training-mode batch normalization whose statistics cover exactly the valid
// frames of the batch (and, with a synchronized BatchStatistics, of every
// rank's batch), optionally fused with the ReLU that follows it in the
// frontends. Two layouts, one per kernel path:
//   a list of per-utterance [1, C, L_i] maps (CPU): one autograd function for
//     the whole list, plain loops over float maps (one pass for the statistics,
//     one for the output, two for the gradient); the composite version cost a
//     quarter of the seed-parity training step;
//   one padded [B, C, T] batch with a [B, 1, T] mask (any device): whole-batch
//     tensor ops, statistics in float32, no host synchronization.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "asr/model/batch_statistics.h"

namespace asr::model {

struct PooledMoments {
  at::Tensor mean;      // [C]
  at::Tensor variance;  // [C], biased (divided by frames)
  int64_t frames = 0;   // over every rank when synchronized (the list layout)
  at::Tensor total;     // [1] float64, the same count where the statistics live (no host read needed)
};

// Per-channel moments of every frame of every map (and of every rank's maps
// when `stats` is synchronized); no autograd.
PooledMoments pooled_moments(const std::vector<at::Tensor>& xs, int64_t channels, BatchStatistics* stats = nullptr);

// y = (x - mean) / sqrt(variance + eps) * weight + bias for each map, then
// max(y, 0) when `relu`; the gradient flows through the pooled statistics as
// in training-mode batch norm. `moments` must come from pooled_moments(xs)
// with the same `stats`.
std::vector<at::Tensor> pooled_batch_norm(const std::vector<at::Tensor>& xs, const at::Tensor& weight,
                                          const at::Tensor& bias, const PooledMoments& moments, double eps,
                                          bool relu, BatchStatistics* stats = nullptr);

// The batched layout: x [B, C, T], mask [B, 1, T] (1 on valid frames),
// `frames` = this rank's valid frames. Returns float32 [B, C, T], padding
// zero, and the batch's moments in `moments` (for the running statistics).
at::Tensor masked_batch_norm(const at::Tensor& x, const at::Tensor& mask, int64_t frames, const at::Tensor& weight,
                             const at::Tensor& bias, double eps, bool relu, BatchStatistics* stats,
                             PooledMoments* moments);

}  // namespace asr::model
