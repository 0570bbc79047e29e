// Transformer encoder over [B, T, d_model] frames with sinusoidal positions
// computed for whatever T arrives (no length limit). Only valid frames are
// computed: the layers see the batch packed as [sum of lengths, d_model]
// rows, and on CPU attention runs utterance by utterance over its own
// frames, so padding costs nothing (a batch of LJSpeech-like clips in random
// order is ~40% padding). On other devices (kernel_path.h) attention is one
// padded batch with a key mask: scaled_dot_product_attention where LibTorch
// has it (2.x), matmul/softmax otherwise.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "asr/model/kernel_path.h"
#include "asr/model/model_config.h"
#include "asr/model/packed_frames.h"

namespace asr::model {

// Multi-head attention of packed frames within their own utterance.
// qkv: [N, 3 * D] (queries, keys, values); returns the [N, D] contexts.
// Each utterance on its own (no padding: the CPU path) or as one padded
// batch with a key mask (the accelerator path); equal up to rounding.
at::Tensor attend_each_utterance(const at::Tensor& qkv, const PackedFrames& packed, int64_t heads, double dropout,
                                 bool training);
at::Tensor attend_padded(const at::Tensor& qkv, const PackedFrames& packed, int64_t heads, double dropout,
                         bool training);

// The convolution module of a layer: pointwise conv to 2D + GLU, a depthwise
// conv over each utterance's own frames (zeros past its ends, as if alone),
// layer norm, SiLU, pointwise conv. It models the local context attention
// finds hard to learn from little data.
class ConvModuleImpl : public torch::nn::Module {
 public:
  ConvModuleImpl(int64_t d_model, int64_t kernel);
  // x: [N, d_model] packed frames; returns the same shape.
  at::Tensor forward(const at::Tensor& x, const PackedFrames& packed);

 private:
  torch::nn::Linear expand_{nullptr}, project_{nullptr};
  at::Tensor depthwise_weight_, depthwise_bias_;  // [D, 1, K], [D]
  torch::nn::LayerNorm norm_{nullptr};
  int64_t kernel_;
};
TORCH_MODULE(ConvModule);

class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(int64_t d_model, int64_t heads, int64_t ff_dim, double dropout, double attention_dropout,
                   bool pre_ln, int64_t conv_kernel = 0);
  // x: [N, d_model], the batch's valid frames as packed.
  at::Tensor forward(const at::Tensor& x, const PackedFrames& packed);
  void set_kernel_path(KernelPath path) { kernels_ = path; }

 private:
  KernelPath kernels_ = KernelPath::automatic;
  at::Tensor attention(const at::Tensor& x, const PackedFrames& packed);
  int64_t heads_;
  bool pre_ln_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr}, ff1_{nullptr}, ff2_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm_conv_{nullptr};
  ConvModule conv_{nullptr};
  double dropout_, attn_dropout_;
};
TORCH_MODULE(EncoderLayer);

class TransformerEncoderImpl : public torch::nn::Module {
 public:
  TransformerEncoderImpl(const EncoderConfig& cfg);
  // x: [B, T, d_model]; lengths: [B] int64 valid frames, on the CPU.
  // Returns [B, T, d_model] with padded frames zero.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lengths);
  void set_kernel_path(KernelPath path);

 private:
  int64_t d_model_;
  bool pre_ln_;
  double dropout_;
  std::vector<EncoderLayer> layers_;
  torch::nn::LayerNorm final_norm_{nullptr};
};
TORCH_MODULE(TransformerEncoder);

// [T, d_model] sinusoidal table (sin on even, cos on odd channels).
at::Tensor sinusoidal_positions(int64_t frames, int64_t d_model, const at::TensorOptions& opts);

}  // namespace asr::model
