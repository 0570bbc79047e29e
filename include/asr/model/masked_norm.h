// Normalization of frontend feature maps that never lets padding into a
// statistic. Two layouts, one per kernel path (kernel_path.h):
//   a list of [1, C, L_b] maps, one per utterance at its own length (CPU);
//   one padded [B, C, T] batch with a [B, 1, T] 0/1 mask (generic, GPU).
// Kinds:
//   batch: per-channel statistics over every valid frame of the batch, and
//          with a synchronized BatchStatistics of every rank's batch (the
//          global batch), in forward and backward alike. Running statistics
//          are buffers, updated only when the step is applied
//          (apply_pending_statistics), so a skipped step leaves them as they were.
//   group: per-utterance statistics over (channels of a group, valid frames).
//   layer: per-frame statistics over channels.
// Statistics are computed in float32 whatever the input precision.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "asr/model/batch_statistics.h"

namespace asr::model {

enum class NormKind { batch, group, layer };

// Throws asr::Error naming the value for anything but "batch", "group", "layer".
NormKind parse_norm_kind(const std::string& name);

class MaskedNormImpl : public torch::nn::Module {
 public:
  MaskedNormImpl(NormKind kind, int64_t channels, int64_t groups, double eps = 1e-5, double momentum = 0.1);

  // Each element [1, C, L_b] with L_b >= 1; returns the normalized maps,
  // passed through a ReLU when `relu` (fused with training-mode batch norm).
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& xs, bool relu = false);
  // x [B, C, T] of any float type, mask [B, 1, T] (1 on valid frames), and
  // `frames` the number of valid frames (the mask's sum, known on the host).
  // Returns float32 [B, C, T] with padded frames zero.
  at::Tensor forward_batched(const at::Tensor& x, const at::Tensor& mask, int64_t frames, bool relu = false);

  // Where training-mode batch norm sums its statistics (not owned).
  void set_batch_statistics(BatchStatistics* stats) { stats_ = stats; }
  // Batch norm: fold the last training forward's statistics into the running
  // ones, or forget them. No-ops for the other kinds.
  void apply_pending_statistics();
  void discard_pending_statistics();

  NormKind kind() const { return kind_; }
  int64_t channels() const { return channels_; }

 private:
  // Everything but training-mode batch norm.
  std::vector<at::Tensor> normalize(const std::vector<at::Tensor>& xs);
  at::Tensor normalize_batched(const at::Tensor& x, const at::Tensor& mask);
  void remember(const at::Tensor& mean, const at::Tensor& variance, const at::Tensor& total);

  NormKind kind_;
  int64_t channels_;
  int64_t groups_;
  double eps_;
  double momentum_;
  at::Tensor weight_, bias_;
  at::Tensor running_mean_, running_var_;
  BatchStatistics* stats_ = nullptr;
  struct Pending {
    at::Tensor mean, variance;  // [C] float
    at::Tensor total;           // [1] float64: frames over every rank
  } pending_;
};
TORCH_MODULE(MaskedNorm);

}  // namespace asr::model
