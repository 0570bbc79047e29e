#include "asr/model/encoder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include <torch/version.h>

#include "asr/core/error.h"
#include "asr/model/dropout.h"
#include "asr/model/transfer.h"

namespace asr::model {

at::Tensor sinusoidal_positions(int64_t frames, int64_t d_model, const at::TensorOptions& opts) {
  // Computed where it is used: a table made on the CPU would reach a GPU by a
  // blocking copy every forward.
  auto f64 = torch::TensorOptions().dtype(torch::kDouble).device(opts.device());
  auto pos = torch::arange(frames, f64).unsqueeze(1);
  auto i = torch::arange(0, d_model, 2, f64);
  auto angle = pos * torch::exp(i * (-std::log(10000.0) / d_model)).unsqueeze(0);  // [T, ceil(D/2)]
  auto table = torch::stack({torch::sin(angle), torch::cos(angle)}, 2).reshape({frames, -1});
  return table.narrow(1, 0, d_model).to(opts);
}

ConvModuleImpl::ConvModuleImpl(int64_t d_model, int64_t kernel) : kernel_(kernel) {
  if (kernel < 1) throw asr::Error("model.encoder.conv_kernel: must be at least 1 for a convolution module");
  expand_ = register_module("expand", torch::nn::Linear(d_model, 2 * d_model));
  // A depthwise Conv1d's parameters, initialized as torch::nn::Conv1d would
  // (fan-in = kernel); applied with at::conv1d on frames unpacked per utterance.
  const double bound = 1.0 / std::sqrt(static_cast<double>(kernel));
  depthwise_weight_ = register_parameter("depthwise_weight", torch::empty({d_model, 1, kernel}).uniform_(-bound, bound));
  depthwise_bias_ = register_parameter("depthwise_bias", torch::empty({d_model}).uniform_(-bound, bound));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  project_ = register_module("project", torch::nn::Linear(d_model, d_model));
}

at::Tensor ConvModuleImpl::forward(const at::Tensor& x, const PackedFrames& packed) {
  const int64_t b = packed.batch, t = packed.frames, d = x.size(1);
  auto h = torch::glu(expand_->forward(x), -1);  // [N, D]
  // Padded [B, D, T] with zeros past every length, so each utterance's
  // convolution sees only its own frames and zeros beyond them.
  auto padded = torch::zeros({b * t, d}, h.options()).index_copy(0, packed.rows, h).view({b, t, d}).transpose(1, 2);
  const int64_t left = (kernel_ - 1) / 2, right = kernel_ - 1 - left;
  auto y = at::conv1d(at::constant_pad_nd(padded, {left, right}), depthwise_weight_.to(h.scalar_type()),
                      depthwise_bias_.to(h.scalar_type()), at::IntArrayRef{1}, at::IntArrayRef{0},
                      at::IntArrayRef{1}, d);
  y = y.transpose(1, 2).reshape({b * t, d}).index_select(0, packed.rows);
  return project_->forward(torch::silu(norm_->forward(y)));
}

EncoderLayerImpl::EncoderLayerImpl(int64_t d_model, int64_t heads, int64_t ff_dim, double dropout,
                                   double attention_dropout, bool pre_ln, int64_t conv_kernel)
    : heads_(heads), pre_ln_(pre_ln), dropout_(dropout), attn_dropout_(attention_dropout) {
  qkv_ = register_module("qkv", torch::nn::Linear(d_model, 3 * d_model));
  proj_ = register_module("proj", torch::nn::Linear(d_model, d_model));
  ff1_ = register_module("ff1", torch::nn::Linear(d_model, ff_dim));
  ff2_ = register_module("ff2", torch::nn::Linear(ff_dim, d_model));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  if (conv_kernel > 0) {
    conv_ = register_module("conv", ConvModule(d_model, conv_kernel));
    norm_conv_ = register_module("norm_conv", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  }
}

at::Tensor attend_each_utterance(const at::Tensor& qkv, const PackedFrames& packed, int64_t heads, double dropout,
                                 bool training) {
  const int64_t d = qkv.size(1) / 3, dh = d / heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  std::vector<at::Tensor> contexts;
  int64_t offset = 0;
  for (int64_t t : packed.lengths) {
    if (t == 0) continue;
    // This utterance's [T, 3, H, Dh] rows -> three [H, T, Dh] views.
    auto u = qkv.narrow(0, offset, t).view({t, 3, heads, dh}).permute({1, 2, 0, 3});
    auto weights = torch::softmax(torch::matmul(u[0] * scale, u[1].transpose(-2, -1)), -1);  // [H, T, T]
    weights = model::dropout(weights, dropout, training);
    contexts.push_back(torch::matmul(weights, u[2]).permute({1, 0, 2}).reshape({t, d}));
    offset += t;
  }
  return contexts.empty() ? torch::zeros({0, d}, qkv.options()) : torch::cat(contexts, 0);
}

at::Tensor attend_padded(const at::Tensor& qkv, const PackedFrames& packed, int64_t heads, double dropout,
                         bool training) {
  const int64_t b = packed.batch, t = packed.frames, d = qkv.size(1) / 3, dh = d / heads;
  // [B, T, 3, H, Dh] -> three [B, H, T, Dh] views.
  auto u = torch::zeros({b * t, 3 * d}, qkv.options())
               .index_copy(0, packed.rows, qkv)
               .view({b, t, 3, heads, dh})
               .permute({2, 0, 3, 1, 4});
  auto lengths = to_device(torch::tensor(packed.lengths, torch::kLong), qkv.device());
  auto steps = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(qkv.device()));
  auto valid_key = (steps.unsqueeze(0) < lengths.unsqueeze(1)).view({b, 1, 1, t});
  const bool some_empty = std::find(packed.lengths.begin(), packed.lengths.end(), 0) != packed.lengths.end();
#if TORCH_VERSION_MAJOR >= 2
  // The fused kernel (memory-efficient or cuDNN attention on a GPU); the mask
  // says which keys take part. Padded query rows are computed and dropped. An
  // utterance without frames would have no key at all (NaN rows): matmul path.
  if (!some_empty) {
    auto context = at::scaled_dot_product_attention(u[0], u[1], u[2], valid_key, training ? dropout : 0.0)
                       .transpose(1, 2)
                       .reshape({b * t, d});
    return context.index_select(0, packed.rows);
  }
#endif
  (void)some_empty;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  // A large finite penalty, not -inf: padded query rows stay finite (they
  // are dropped below) and valid keys take all the probability mass.
  auto key_bias = torch::zeros({b, 1, 1, t}, qkv.options()).masked_fill(valid_key.logical_not(), -1e9);
  auto weights = torch::softmax(torch::matmul(u[0] * scale, u[1].transpose(-2, -1)) + key_bias, -1);
  weights = model::dropout(weights, dropout, training);
  auto context = torch::matmul(weights, u[2]).transpose(1, 2).reshape({b * t, d});  // [B * T, D]
  return context.index_select(0, packed.rows);
}

at::Tensor EncoderLayerImpl::attention(const at::Tensor& x, const PackedFrames& packed) {
  auto qkv = qkv_->forward(x);  // [N, 3D]
  // One core gains from skipping padding; an accelerator from one batched
  // launch instead of a few small ones per utterance.
  auto context = use_generic(kernels_, x) ? attend_padded(qkv, packed, heads_, attn_dropout_, is_training())
                                          : attend_each_utterance(qkv, packed, heads_, attn_dropout_, is_training());
  return proj_->forward(context);
}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& x, const PackedFrames& packed) {
  auto drop = [this](const at::Tensor& h) { return model::dropout(h, dropout_, is_training()); };
  auto ff = [&](const at::Tensor& h) { return ff2_->forward(drop(torch::relu(ff1_->forward(h)))); };
  if (pre_ln_) {
    auto h = x + drop(attention(norm1_->forward(x), packed));
    if (conv_) h = h + drop(conv_->forward(norm_conv_->forward(h), packed));
    return h + drop(ff(norm2_->forward(h)));
  }
  auto h = norm1_->forward(x + drop(attention(x, packed)));
  if (conv_) h = norm_conv_->forward(h + drop(conv_->forward(h, packed)));
  return norm2_->forward(h + drop(ff(h)));
}

void TransformerEncoderImpl::set_kernel_path(KernelPath path) {
  for (auto& layer : layers_) layer->set_kernel_path(path);
}

TransformerEncoderImpl::TransformerEncoderImpl(const EncoderConfig& cfg)
    : d_model_(cfg.d_model), pre_ln_(cfg.pre_ln), dropout_(cfg.dropout) {
  if (cfg.d_model < 2 || cfg.heads < 1 || cfg.d_model % cfg.heads != 0) {
    throw asr::Error("model.encoder: d_model (" + std::to_string(cfg.d_model) +
                     ") must be a positive multiple of heads (" + std::to_string(cfg.heads) + ")");
  }
  if (cfg.layers < 0 || cfg.ff_mult < 1) {
    throw asr::Error("model.encoder: layers must be >= 0 and ff_mult >= 1");
  }
  if (cfg.dropout < 0 || cfg.dropout >= 1) {
    throw asr::Error("model.encoder.dropout: must be in [0, 1), got " + std::to_string(cfg.dropout));
  }
  if (cfg.attention_dropout < 0 || cfg.attention_dropout >= 1) {
    throw asr::Error("model.encoder.attention_dropout: must be in [0, 1), got " +
                     std::to_string(cfg.attention_dropout));
  }
  for (int i = 0; i < cfg.layers; ++i) {
    layers_.push_back(register_module(
        "layer" + std::to_string(i),
        EncoderLayer(cfg.d_model, cfg.heads, static_cast<int64_t>(cfg.ff_mult) * cfg.d_model, cfg.dropout,
                     cfg.attention_dropout, cfg.pre_ln, cfg.conv_kernel)));
  }
  // Pre-LN leaves the residual stream unnormalized; close it with one norm.
  if (pre_ln_) final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model})));
}

at::Tensor TransformerEncoderImpl::forward(const at::Tensor& x, const at::Tensor& lengths) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  auto packed = pack_frames(lengths, b, t, x.device());
  // The residual stream stays in float32 under autocast: layer norms read it
  // in full precision, and only the matmuls run in bfloat16.
  auto h = (x.to(torch::kFloat) + sinusoidal_positions(t, d_model_, x.options().dtype(torch::kFloat)).unsqueeze(0))
               .reshape({b * t, d});
  h = model::dropout(h.index_select(0, packed.rows), dropout_, is_training());
  for (auto& layer : layers_) h = layer->forward(h, packed);
  if (pre_ln_) h = final_norm_->forward(h);
  return torch::zeros({b * t, d}, h.options()).index_copy(0, packed.rows, h).view({b, t, d});
}

}  // namespace asr::model
