// Frontends turn a padded batch of waveforms into encoder frames, and know
// exactly how many frames each utterance yields (the conv arithmetic), so CTC
// sees true lengths for every utterance in the batch.
//   waveform (the seed's): average pool, residual downsampling blocks
//            (conv -> norm -> ReLU -> strided conv, plus a 1x1 strided
//            projection of the block input), then a 1x1 conv to d_model.
//   logmel:  log-mel filterbank (STFT) then strided conv subsampling.
// On the CPU both run every utterance at its own length (the padding of the
// batch is never read), so no work is spent on padding and activations stay
// small enough for the allocator to reuse (batched full-rate maps were 2.5x
// slower on one core). On a GPU (kernel_path.h) they run the whole padded
// batch at once, zeroing every map past each utterance's length so that no
// convolution or statistic reads padding: the same function, in a few large
// kernels instead of thousands of small ones. Either way an utterance's
// outputs are the same alone or in a batch.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <memory>
#include <vector>

#include "asr/model/kernel_path.h"
#include "asr/model/masked_norm.h"
#include "asr/model/model_config.h"

namespace asr::model {

struct FrontendOutput {
  at::Tensor features;  // [B, max(lengths), d_model], padded frames zero
  at::Tensor lengths;   // [B] int64, valid frames per utterance
};

class Frontend : public torch::nn::Module {
 public:
  // waveform: [B, T] float on the model's device; lengths: [B] int64 valid
  // samples, on the CPU (frame counts are host arithmetic, never a device read).
  FrontendOutput forward(const at::Tensor& waveform, const at::Tensor& lengths);
  // Exact frame counts for given sample counts (any shape, int64).
  virtual at::Tensor output_lengths(const at::Tensor& input_lengths) const = 0;
  int64_t output_length(int64_t samples) const;
  // Input samples between consecutive output frames (the total downsampling),
  // and input samples one output frame depends on. Chunked decoding cuts
  // inputs on frame boundaries and overlaps chunks by at least the latter.
  virtual int64_t samples_per_frame() const = 0;
  virtual int64_t receptive_field() const = 0;

  void set_kernel_path(KernelPath path) { kernels_ = path; }
  // The normalization layers, in forward order (batch statistics, pending
  // running statistics and the out-of-memory replay go through them).
  const std::vector<MaskedNorm>& norms() const { return norms_; }
  std::vector<MaskedNorm>& norms() { return norms_; }

 protected:
  // The two layouts (see above); `lengths` on the CPU.
  virtual FrontendOutput forward_each(const at::Tensor& waveform, const at::Tensor& lengths) = 0;
  virtual FrontendOutput forward_batched(const at::Tensor& waveform, const at::Tensor& lengths) = 0;
  MaskedNorm add_norm(const std::string& name, NormKind kind, int64_t channels, int64_t groups);
  // model.frontend.output_norm: a layer norm over the `d_model` output channels.
  void add_output_norm(const FrontendConfig& cfg, int64_t d_model);

 private:
  KernelPath kernels_ = KernelPath::automatic;
  torch::nn::LayerNorm output_norm_{nullptr};
  std::vector<MaskedNorm> norms_;
};

// Throws asr::Error naming the key for an unusable configuration.
std::shared_ptr<Frontend> make_frontend(const ModelConfig& cfg);

class WaveformFrontend : public Frontend {
 public:
  WaveformFrontend(const FrontendConfig& cfg, int64_t d_model);
  at::Tensor output_lengths(const at::Tensor& input_lengths) const override;
  int64_t samples_per_frame() const override;
  int64_t receptive_field() const override;

 protected:
  FrontendOutput forward_each(const at::Tensor& waveform, const at::Tensor& lengths) override;
  FrontendOutput forward_batched(const at::Tensor& waveform, const at::Tensor& lengths) override;

 private:
  struct Block {
    torch::nn::Conv1d conv{nullptr}, down{nullptr}, skip{nullptr};
    MaskedNorm norm{nullptr};
    int64_t stride = 1, pad_left = 0, pad_right = 0, down_pad = 0;
  };
  int64_t pool_;
  int64_t kernel_;
  std::vector<Block> blocks_;
  torch::nn::Conv1d out_{nullptr};
};

class LogMelFrontend : public Frontend {
 public:
  LogMelFrontend(const FrontendConfig& cfg, int64_t sample_rate, int64_t d_model);
  at::Tensor output_lengths(const at::Tensor& input_lengths) const override;
  int64_t samples_per_frame() const override;
  int64_t receptive_field() const override;

 protected:
  FrontendOutput forward_each(const at::Tensor& waveform, const at::Tensor& lengths) override;
  FrontendOutput forward_batched(const at::Tensor& waveform, const at::Tensor& lengths) override;

 private:
  // [B, T] padded waveforms -> [B, n_mels, frames] log-mel features, in float32.
  at::Tensor features(const at::Tensor& waveform) const;
  int64_t n_fft_, hop_;
  std::vector<int64_t> strides_;
  at::Tensor window_, mel_;  // buffers: [n_fft], [n_fft/2+1, n_mels]
  std::vector<torch::nn::Conv1d> convs_;
  torch::nn::Conv1d out_{nullptr};
};

// Triangular HTK-style mel filters: [n_fft/2 + 1, n_mels].
at::Tensor mel_filterbank(int64_t sample_rate, int64_t n_fft, int64_t n_mels);

}  // namespace asr::model
