#include "asr/model/frontend.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "asr/core/error.h"
#include "asr/model/conv_ops.h"
#include "asr/model/precision.h"
#include "asr/model/transfer.h"

namespace asr::model {

namespace F = torch::nn::functional;

namespace {

// Frames out of a conv (or pool) with this geometry, for `in` frames in;
// never negative.
at::Tensor conv_frames(const at::Tensor& in, int64_t kernel, int64_t stride, int64_t pad) {
  return (torch::div(in + (2 * pad - kernel), stride, "floor") + 1).clamp_min(0);
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  auto c = t.to(torch::kCPU).to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// The valid samples of every utterance with frames to give, as [1, 1, L_b].
std::vector<at::Tensor> utterances(const at::Tensor& waveform, const std::vector<int64_t>& samples,
                                   const std::vector<int64_t>& frames, std::vector<int64_t>* active) {
  std::vector<at::Tensor> xs;
  for (size_t b = 0; b < samples.size(); ++b) {
    if (samples[b] < 0 || samples[b] > waveform.size(1)) {
      throw asr::Error("frontend: utterance " + std::to_string(b) + " claims " + std::to_string(samples[b]) +
                       " samples but the batch holds " + std::to_string(waveform.size(1)));
    }
    if (frames[b] == 0) continue;
    active->push_back(static_cast<int64_t>(b));
    xs.push_back(waveform[b].narrow(0, 0, samples[b]).reshape({1, 1, samples[b]}));
  }
  return xs;
}

// Per-utterance [1, D, L'] maps into a zero-padded [B, max L', D] batch.
at::Tensor pad_batch(const std::vector<at::Tensor>& maps, const std::vector<int64_t>& active,
                     const std::vector<int64_t>& frames, int64_t d_model, const at::TensorOptions& opts) {
  const int64_t t = frames.empty() ? 0 : *std::max_element(frames.begin(), frames.end());
  std::vector<at::Tensor> rows(frames.size());
  for (size_t i = 0; i < active.size(); ++i) {
    const auto b = active[i];
    if (maps[i].size(2) != frames[b]) {
      throw asr::Error("frontend: internal length mismatch for utterance " + std::to_string(b));
    }
    rows[b] = maps[i].squeeze(0).t();
  }
  for (size_t b = 0; b < rows.size(); ++b) {
    const int64_t have = rows[b].defined() ? rows[b].size(0) : 0;
    auto tail = torch::zeros({t - have, d_model}, opts);
    rows[b] = have == 0 ? tail : (have == t ? rows[b] : torch::cat({rows[b], tail}, 0));
  }
  return torch::stack(rows);
}

// One utterance's conv: in fixed-shape chunks on CPU (see conv_ops.h), one
// call elsewhere.
at::Tensor conv(const at::Tensor& x, const torch::nn::Conv1d& layer, int64_t stride, int64_t pad_left,
                int64_t pad_right) {
  // Threads split each chunk, so chunks grow with them.
  if (x.device().is_cpu()) {
    return conv1d_chunked(x, layer->weight, layer->bias, stride, pad_left, pad_right,
                          512 * std::max(1, at::get_num_threads()));
  }
  return at::conv1d(at::constant_pad_nd(x, {pad_left, pad_right}), layer->weight, layer->bias,
                    at::IntArrayRef{stride});
}

// [B, 1, T] float mask of the first `frames[b]` frames of each row, built on
// `device` from host counts (a non-blocking copy, no synchronization).
at::Tensor frame_mask(const std::vector<int64_t>& frames, int64_t t, const c10::Device& device) {
  auto lens = to_device(torch::tensor(frames, torch::kLong), device);
  auto steps = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(device));
  return (steps.unsqueeze(0) < lens.unsqueeze(1)).to(torch::kFloat).unsqueeze(1);
}

// x with every frame past its utterance's length set to zero, in x's type.
at::Tensor masked(const at::Tensor& x, const at::Tensor& mask) { return x * mask.to(x.scalar_type()); }

int64_t total(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

// Frame counts through a conv of this geometry, on the host.
std::vector<int64_t> conv_frames(const std::vector<int64_t>& in, int64_t kernel, int64_t stride, int64_t pad) {
  std::vector<int64_t> out;
  for (int64_t n : in) out.push_back(std::max<int64_t>(0, (n + 2 * pad - kernel) / stride + 1));
  return out;
}

void require_positive(int value, const char* key) {
  if (value < 1) {
    throw asr::Error(std::string("model.frontend.") + key + ": must be at least 1, got " +
                     std::to_string(value));
  }
}

}  // namespace

FrontendOutput Frontend::forward(const at::Tensor& waveform, const at::Tensor& lengths) {
  auto lens = lengths.to(torch::kLong);
  auto out = use_generic(kernels_, waveform) ? forward_batched(waveform, lens) : forward_each(waveform, lens);
  if (output_norm_) {
    // Per frame, so no statistic reads padding; padded frames are zeroed again.
    auto mask = frame_mask(to_vector(out.lengths), out.features.size(1), out.features.device()).transpose(1, 2);
    out.features = output_norm_->forward(out.features) * mask.to(out.features.scalar_type());
  }
  return out;
}

void Frontend::add_output_norm(const FrontendConfig& cfg, int64_t d_model) {
  if (cfg.output_norm)
    output_norm_ = register_module("output_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
}

MaskedNorm Frontend::add_norm(const std::string& name, NormKind kind, int64_t channels, int64_t groups) {
  norms_.push_back(register_module(name, MaskedNorm(kind, channels, groups)));
  return norms_.back();
}

int64_t Frontend::output_length(int64_t samples) const {
  return output_lengths(torch::tensor({samples}, torch::kLong)).item<int64_t>();
}

std::shared_ptr<Frontend> make_frontend(const ModelConfig& cfg) {
  if (cfg.frontend.kind == "waveform") {
    return std::make_shared<WaveformFrontend>(cfg.frontend, cfg.encoder.d_model);
  }
  if (cfg.frontend.kind == "logmel") {
    return std::make_shared<LogMelFrontend>(cfg.frontend, cfg.sample_rate, cfg.encoder.d_model);
  }
  throw asr::Error("model.frontend.kind: unknown frontend '" + cfg.frontend.kind +
                   "'; use \"waveform\" or \"logmel\"");
}

// ---------------------------------------------------------------- waveform

WaveformFrontend::WaveformFrontend(const FrontendConfig& cfg, int64_t d_model)
    : pool_(cfg.pool), kernel_(cfg.kernel) {
  require_positive(cfg.pool, "pool");
  require_positive(cfg.kernel, "kernel");
  if (cfg.strides.empty()) throw asr::Error("model.frontend.strides: needs at least one stride");
  const int64_t hidden = cfg.hidden > 0 ? cfg.hidden : d_model / 2;
  if (hidden < 1) throw asr::Error("model.frontend.hidden: resolves to 0 channels; set it or d_model");
  const NormKind norm = parse_norm_kind(cfg.norm);
  int64_t in_ch = 1;
  for (size_t i = 0; i < cfg.strides.size(); ++i) {
    require_positive(cfg.strides[i], "strides");
    Block b;
    b.stride = cfg.strides[i];
    // "Same" length for the full-rate conv, even for an even kernel.
    b.pad_left = (kernel_ - 1) / 2;
    b.pad_right = kernel_ - 1 - b.pad_left;
    // Centres the strided kernel; 2 * pad < kernel keeps the 1x1 skip path
    // at least as long as the main path, so the skip is only ever trimmed.
    b.down_pad = std::max<int64_t>(0, (kernel_ - b.stride) / 2);
    const std::string n = std::to_string(i);
    b.conv = register_module("block" + n + "_conv",
                             torch::nn::Conv1d(torch::nn::Conv1dOptions(in_ch, hidden, kernel_).bias(false)));
    b.norm = add_norm("block" + n + "_norm", norm, hidden, cfg.norm_groups);
    b.down = register_module("block" + n + "_down",
                             torch::nn::Conv1d(torch::nn::Conv1dOptions(hidden, hidden, kernel_)
                                                   .stride(b.stride)
                                                   .padding(b.down_pad)));
    b.skip = register_module("block" + n + "_skip",
                             torch::nn::Conv1d(torch::nn::Conv1dOptions(in_ch, hidden, 1).stride(b.stride)));
    blocks_.push_back(b);
    in_ch = hidden;
  }
  out_ = register_module("out", torch::nn::Conv1d(torch::nn::Conv1dOptions(in_ch, d_model, 1)));
  add_output_norm(cfg, d_model);
}

at::Tensor WaveformFrontend::output_lengths(const at::Tensor& input_lengths) const {
  auto len = conv_frames(input_lengths.to(torch::kLong), pool_, pool_, 0);
  for (const auto& b : blocks_) len = conv_frames(len, kernel_, b.stride, b.down_pad);
  return len;
}

int64_t WaveformFrontend::samples_per_frame() const {
  int64_t hop = pool_;
  for (const auto& b : blocks_) hop *= b.stride;
  return hop;
}

int64_t WaveformFrontend::receptive_field() const {
  // Backwards from one output frame: each block's strided conv, then its
  // full-rate conv, then the pooling.
  int64_t frames = 1;
  for (auto b = blocks_.rbegin(); b != blocks_.rend(); ++b) frames = (frames - 1) * b->stride + kernel_ + kernel_ - 1;
  return frames * pool_;
}

FrontendOutput WaveformFrontend::forward_each(const at::Tensor& waveform, const at::Tensor& lengths) {
  auto out_len = output_lengths(lengths);
  const auto samples = to_vector(lengths), frames = to_vector(out_len);
  std::vector<int64_t> active;
  auto xs = utterances(waveform, samples, frames, &active);
  for (auto& x : xs) x = at::avg_pool1d(x, {pool_}, {pool_});
  for (auto& b : blocks_) {
    std::vector<at::Tensor> hs;
    for (const auto& x : xs) {
      hs.push_back(x.size(1) == 1 ? conv1d_one_input_channel(at::constant_pad_nd(x, {b.pad_left, b.pad_right}),
                                                             b.conv->weight)
                                  : conv(x, b.conv, 1, b.pad_left, b.pad_right));
    }
    hs = b.norm->forward(hs, /*relu=*/true);
    for (size_t i = 0; i < xs.size(); ++i) {
      auto y = conv(hs[i], b.down, b.stride, b.down_pad, b.down_pad);
      // Only the input frames whose projection is kept: the skip path is
      // trimmed to the main path's length before it is computed.
      const int64_t kept = std::min(xs[i].size(2), (y.size(2) - 1) * b.stride + 1);
      xs[i] = y + conv1d_pointwise(xs[i].narrow(2, 0, kept), b.skip->weight, b.skip->bias, b.stride);
    }
  }
  for (auto& x : xs) x = conv1d_pointwise(x, out_->weight, out_->bias, 1);
  return {pad_batch(xs, active, frames, out_->options.out_channels(), waveform.options()), out_len};
}

FrontendOutput WaveformFrontend::forward_batched(const at::Tensor& waveform, const at::Tensor& lengths) {
  const auto out_len = output_lengths(lengths);
  const auto dev = waveform.device();
  // Pooling drops each utterance's partial last window, as the per-utterance path does.
  auto frames = conv_frames(to_vector(lengths), pool_, pool_, 0);
  auto x = at::avg_pool1d(waveform.unsqueeze(1), {pool_}, {pool_});
  auto mask = frame_mask(frames, x.size(2), dev);
  x = masked(x, mask);
  for (auto& b : blocks_) {
    // Zeros past every length stand in for each utterance's own zero padding.
    auto h = at::conv1d(at::constant_pad_nd(x, {b.pad_left, b.pad_right}), b.conv->weight);
    h = b.norm->forward_batched(h, mask, total(frames), /*relu=*/true);
    auto y = at::conv1d(at::constant_pad_nd(h, {b.down_pad, b.down_pad}), b.down->weight, b.down->bias,
                        at::IntArrayRef{b.stride});
    // The strided 1x1 skip as a slice and an unstrided 1x1 conv: the same
    // numbers, and it keeps clear of convolution backward with stride >
    // kernel, which LibTorch 2.6's CPU (oneDNN) path leaves uninitialized
    // where no window reads the input (NaN gradients; the trixie check found it).
    auto skip = at::conv1d(x.slice(2, 0, x.size(2), b.stride), b.skip->weight, b.skip->bias).narrow(2, 0, y.size(2));
    frames = conv_frames(frames, kernel_, b.stride, b.down_pad);
    mask = frame_mask(frames, y.size(2), dev);
    x = masked(y + skip, mask);
  }
  auto out = masked(at::conv1d(x, out_->weight, out_->bias), mask);
  return {out.transpose(1, 2), out_len};
}

// ---------------------------------------------------------------- logmel

at::Tensor mel_filterbank(int64_t sample_rate, int64_t n_fft, int64_t n_mels) {
  const int64_t bins = n_fft / 2 + 1;
  auto hz_to_mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
  auto mel_to_hz = [](double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); };
  const double top = hz_to_mel(sample_rate / 2.0);
  std::vector<double> edges(n_mels + 2);
  for (int64_t i = 0; i < n_mels + 2; ++i) edges[i] = mel_to_hz(top * i / (n_mels + 1));
  auto fb = torch::zeros({bins, n_mels});
  auto acc = fb.accessor<float, 2>();
  for (int64_t f = 0; f < bins; ++f) {
    const double hz = static_cast<double>(f) * sample_rate / n_fft;
    for (int64_t m = 0; m < n_mels; ++m) {
      const double lo = edges[m], mid = edges[m + 1], hi = edges[m + 2];
      double w = 0;
      if (hz > lo && hz <= mid) w = (hz - lo) / (mid - lo);
      else if (hz > mid && hz < hi) w = (hi - hz) / (hi - mid);
      acc[f][m] = static_cast<float>(w);
    }
  }
  return fb;
}

LogMelFrontend::LogMelFrontend(const FrontendConfig& cfg, int64_t sample_rate, int64_t d_model)
    : n_fft_(cfg.n_fft), hop_(cfg.hop) {
  require_positive(cfg.n_fft, "n_fft");
  require_positive(cfg.hop, "hop");
  require_positive(cfg.n_mels, "n_mels");
  const int64_t hidden = cfg.hidden > 0 ? cfg.hidden : d_model / 2;
  if (hidden < 1) throw asr::Error("model.frontend.hidden: resolves to 0 channels; set it or d_model");
  const NormKind norm = parse_norm_kind(cfg.norm);
  window_ = register_buffer("window", torch::hann_window(n_fft_, torch::TensorOptions().dtype(torch::kFloat)));
  mel_ = register_buffer("mel", mel_filterbank(sample_rate, n_fft_, cfg.n_mels));
  int64_t in_ch = cfg.n_mels;
  for (size_t i = 0; i < cfg.subsample_strides.size(); ++i) {
    const int s = cfg.subsample_strides[i];
    require_positive(s, "subsample_strides");
    strides_.push_back(s);
    const std::string n = std::to_string(i);
    convs_.push_back(register_module(
        "conv" + n,
        torch::nn::Conv1d(torch::nn::Conv1dOptions(in_ch, hidden, 2 * s - 1).stride(s).padding(s - 1).bias(false))));
    add_norm("norm" + n, norm, hidden, cfg.norm_groups);
    in_ch = hidden;
  }
  out_ = register_module("out", torch::nn::Conv1d(torch::nn::Conv1dOptions(in_ch, d_model, 1)));
  add_output_norm(cfg, d_model);
}

at::Tensor LogMelFrontend::output_lengths(const at::Tensor& input_lengths) const {
  auto len = conv_frames(input_lengths.to(torch::kLong), n_fft_, hop_, n_fft_ / 2);
  for (int64_t s : strides_) len = conv_frames(len, 2 * s - 1, s, s - 1);
  return len;
}

int64_t LogMelFrontend::samples_per_frame() const {
  int64_t hop = hop_;
  for (int64_t s : strides_) hop *= s;
  return hop;
}

int64_t LogMelFrontend::receptive_field() const {
  int64_t frames = 1;
  for (auto s = strides_.rbegin(); s != strides_.rend(); ++s) frames = (frames - 1) * *s + 2 * *s - 1;
  return (frames - 1) * hop_ + n_fft_;
}

FrontendOutput LogMelFrontend::forward_each(const at::Tensor& waveform, const at::Tensor& lengths) {
  auto out_len = output_lengths(lengths);
  const auto samples = to_vector(lengths), frames = to_vector(out_len);
  std::vector<int64_t> active;
  auto xs = utterances(waveform, samples, frames, &active);
  for (auto& x : xs) x = features(x.view({1, -1}));
  for (size_t i = 0; i < convs_.size(); ++i) {
    for (auto& x : xs) x = conv(x, convs_[i], strides_[i], strides_[i] - 1, strides_[i] - 1);
    xs = norms()[i]->forward(xs, /*relu=*/true);
  }
  for (auto& x : xs) x = conv1d_pointwise(x, out_->weight, out_->bias, 1);
  return {pad_batch(xs, active, frames, out_->options.out_channels(), waveform.options()), out_len};
}

at::Tensor LogMelFrontend::features(const at::Tensor& waveform) const {
  AutocastDisabled float32;  // spectra and logarithms in float32
  // Zero padding on both sides, not reflection: frame counts follow the
  // plain conv arithmetic and the signal is never mirrored into features.
  auto wav = F::pad(waveform.to(torch::kFloat), F::PadFuncOptions({n_fft_ / 2, n_fft_ / 2}));
  auto spec = torch::stft(wav, n_fft_, hop_, n_fft_, window_, /*normalized=*/false,
                          /*onesided=*/true, /*return_complex=*/true);
  auto power = torch::view_as_real(spec).pow(2).sum(-1);    // [B, bins, frames]
  auto mel = torch::matmul(power.transpose(1, 2), mel_);    // [B, frames, n_mels]
  return torch::log(mel + 1e-6).transpose(1, 2).contiguous();  // [B, n_mels, frames]
}

FrontendOutput LogMelFrontend::forward_batched(const at::Tensor& waveform, const at::Tensor& lengths) {
  const auto out_len = output_lengths(lengths);
  const auto dev = waveform.device();
  // Zeros past every length stand in for each utterance's own zero padding,
  // so the frames within its length are its own spectra.
  const auto samples = to_vector(lengths);
  auto frames = conv_frames(samples, n_fft_, hop_, n_fft_ / 2);
  // Spectra near an utterance's end read up to n_fft/2 samples past it: those must be zeros.
  auto wav = masked(waveform.unsqueeze(1), frame_mask(samples, waveform.size(1), dev)).squeeze(1);
  auto x = features(wav);
  auto mask = frame_mask(frames, x.size(2), dev);
  x = masked(x, mask);
  for (size_t i = 0; i < convs_.size(); ++i) {
    const int64_t s = strides_[i];
    x = at::conv1d(at::constant_pad_nd(x, {s - 1, s - 1}), convs_[i]->weight, {}, at::IntArrayRef{s});
    frames = conv_frames(frames, 2 * s - 1, s, s - 1);
    mask = frame_mask(frames, x.size(2), dev);
    x = norms()[i]->forward_batched(x, mask, total(frames), /*relu=*/true);
  }
  auto out = masked(at::conv1d(x, out_->weight, out_->bias), mask);
  return {out.transpose(1, 2), out_len};
}

}  // namespace asr::model
