#include "asr/model/encoder.h"

#include <torch/torch.h>

#include <cmath>

#include "asr/core/error.h"
#include "asr/model/dropout.h"

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
    : heads_(heads), pre_ln_(pre_ln), dropout_(dropout), attn_dropout_(attention_dropout) {
  qkv_ = register_module("qkv", torch::nn::Linear(d_model, 3 * d_model));
  proj_ = register_module("proj", torch::nn::Linear(d_model, d_model));
  ff1_ = register_module("ff1", torch::nn::Linear(d_model, ff_dim));
  ff2_ = register_module("ff2", torch::nn::Linear(ff_dim, d_model));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
}

at::Tensor EncoderLayerImpl::attention(const at::Tensor& x, const std::vector<int64_t>& lengths) {
  const int64_t d = x.size(1), dh = d / heads_;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  auto qkv = qkv_->forward(x);  // [N, 3D]
  std::vector<at::Tensor> contexts;
  int64_t offset = 0;
  for (int64_t t : lengths) {
    if (t == 0) continue;
    // This utterance's [T, 3, H, Dh] rows -> three [H, T, Dh] views.
    auto u = qkv.narrow(0, offset, t).view({t, 3, heads_, dh}).permute({1, 2, 0, 3});
    auto weights = torch::softmax(torch::matmul(u[0] * scale, u[1].transpose(-2, -1)), -1);  // [H, T, T]
    weights = model::dropout(weights, attn_dropout_, is_training());
    contexts.push_back(torch::matmul(weights, u[2]).permute({1, 0, 2}).reshape({t, d}));
    offset += t;
  }
  auto context = contexts.empty() ? torch::zeros({0, d}, x.options()) : torch::cat(contexts, 0);
  return proj_->forward(context);
}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& x, const std::vector<int64_t>& lengths) {
  auto drop = [this](const at::Tensor& h) { return model::dropout(h, dropout_, is_training()); };
  auto ff = [&](const at::Tensor& h) { return ff2_->forward(drop(torch::relu(ff1_->forward(h)))); };
  if (pre_ln_) {
    auto h = x + drop(attention(norm1_->forward(x), lengths));
    return h + drop(ff(norm2_->forward(h)));
  }
  auto h = norm1_->forward(x + drop(attention(x, lengths)));
  return norm2_->forward(h + drop(ff(h)));
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
                     cfg.attention_dropout, cfg.pre_ln)));
  }
  // Pre-LN leaves the residual stream unnormalized; close it with one norm.
  if (pre_ln_) final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model})));
}

at::Tensor TransformerEncoderImpl::forward(const at::Tensor& x, const at::Tensor& lengths) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  auto lens = lengths.to(torch::kCPU, torch::kLong).clamp(0, t).contiguous();
  std::vector<int64_t> per_utt(lens.data_ptr<int64_t>(), lens.data_ptr<int64_t>() + b);
  // Row index of every valid frame in the flattened [B * T] batch.
  auto steps = torch::arange(t, torch::kLong);
  auto rows = (steps.unsqueeze(0) < lens.unsqueeze(1)).reshape({-1}).nonzero().squeeze(1).to(x.device());
  auto h = (x + sinusoidal_positions(t, d_model_, x.options()).unsqueeze(0)).reshape({b * t, d}).index_select(0, rows);
  h = model::dropout(h, dropout_, is_training());
  for (auto& layer : layers_) h = layer->forward(h, per_utt);
  if (pre_ln_) h = final_norm_->forward(h);
  return torch::zeros({b * t, d}, x.options()).index_copy(0, rows, h).view({b, t, d});
}

}  // namespace asr::model
