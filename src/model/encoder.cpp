#include "asr/model/encoder.h"

#include <torch/torch.h>

#include <cmath>

#include "asr/core/error.h"

namespace asr::model {

at::Tensor sinusoidal_positions(int64_t frames, int64_t d_model, const at::TensorOptions& opts) {
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  auto pos = torch::arange(frames, f64).unsqueeze(1);
  auto i = torch::arange(0, d_model, 2, f64);
  auto angle = pos * torch::exp(i * (-std::log(10000.0) / d_model)).unsqueeze(0);  // [T, ceil(D/2)]
  auto table = torch::stack({torch::sin(angle), torch::cos(angle)}, 2).reshape({frames, -1});
  return table.narrow(1, 0, d_model).to(opts);
}

EncoderLayerImpl::EncoderLayerImpl(int64_t d_model, int64_t heads, int64_t ff_dim, double dropout,
                                   double attention_dropout, bool pre_ln)
    : heads_(heads), pre_ln_(pre_ln), attn_dropout_(attention_dropout) {
  qkv_ = register_module("qkv", torch::nn::Linear(d_model, 3 * d_model));
  proj_ = register_module("proj", torch::nn::Linear(d_model, d_model));
  ff1_ = register_module("ff1", torch::nn::Linear(d_model, ff_dim));
  ff2_ = register_module("ff2", torch::nn::Linear(ff_dim, d_model));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  drop_ = register_module("drop", torch::nn::Dropout(dropout));
}

at::Tensor EncoderLayerImpl::attention(const at::Tensor& x, const at::Tensor& key_bias) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2), dh = d / heads_;
  // [B, T, 3, H, Dh] -> three [B, H, T, Dh] views.
  auto qkv = qkv_->forward(x).view({b, t, 3, heads_, dh}).permute({2, 0, 3, 1, 4});
  auto q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(dh)));
  auto scores = torch::matmul(q, qkv[1].transpose(-2, -1)) + key_bias;  // [B, H, T, T]
  auto weights = torch::softmax(scores, -1);
  if (is_training() && attn_dropout_ > 0) weights = torch::dropout(weights, attn_dropout_, true);
  auto ctx = torch::matmul(weights, qkv[2]);  // [B, H, T, Dh]
  return proj_->forward(ctx.transpose(1, 2).reshape({b, t, d}));
}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& key_bias) {
  auto ff = [this](const at::Tensor& h) { return ff2_->forward(drop_->forward(torch::relu(ff1_->forward(h)))); };
  if (pre_ln_) {
    auto h = x + drop_->forward(attention(norm1_->forward(x), key_bias));
    return h + drop_->forward(ff(norm2_->forward(h)));
  }
  auto h = norm1_->forward(x + drop_->forward(attention(x, key_bias)));
  return norm2_->forward(h + drop_->forward(ff(h)));
}

TransformerEncoderImpl::TransformerEncoderImpl(const EncoderConfig& cfg)
    : d_model_(cfg.d_model), pre_ln_(cfg.pre_ln) {
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
                     cfg.attention_dropout, cfg.pre_ln)));
  }
  // Pre-LN leaves the residual stream unnormalized; close it with one norm.
  if (pre_ln_) final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model})));
  drop_ = register_module("drop", torch::nn::Dropout(cfg.dropout));
}

at::Tensor TransformerEncoderImpl::forward(const at::Tensor& x, const at::Tensor& lengths) {
  const int64_t t = x.size(1);
  auto h = drop_->forward(x + sinusoidal_positions(t, d_model_, x.options()).unsqueeze(0));
  auto steps = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  auto padded = steps.unsqueeze(0) >= lengths.to(x.device()).unsqueeze(1);  // [B, T]
  // A large finite penalty, not -inf: an empty utterance gets uniform weights
  // instead of NaNs, and valid keys still take all the probability mass.
  auto key_bias = torch::zeros({x.size(0), 1, 1, t}, x.options())
                      .masked_fill(padded.view({x.size(0), 1, 1, t}), -1e9);
  for (auto& layer : layers_) h = layer->forward(h, key_bias);
  if (pre_ln_) h = final_norm_->forward(h);
  return h;
}

}  // namespace asr::model
