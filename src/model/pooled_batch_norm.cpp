#include "asr/model/pooled_batch_norm.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>

#include "asr/model/batch_statistics.h"

namespace asr::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ------------------------------------------------------------ CPU kernels
// Plain loops over one [C, L] float map, channel by channel: each is one
// memory pass, the per-channel constants stay in registers, and sums use
// float partials per block of 256 frames accumulated in double.

constexpr int64_t kBlock = 256;

bool use_cpu_kernels(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && x.is_contiguous();
}

// Runs f(channel) for every channel, in parallel when the map is large.
template <class F>
void for_each_channel(int64_t channels, int64_t frames, F f) {
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, frames));
  at::parallel_for(0, channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t ch = begin; ch < end; ++ch) f(ch);
  });
}

// Adds the sums of u[0..n) and v[0..n) to *su and *sv. Eight float lanes
// (the compiler vectorizes the fixed-width inner loop) per block of kBlock
// frames, blocks accumulated in double.
void add_sums(const float* u, const float* v, int64_t n, double* su, double* sv) {
  double total_u = 0, total_v = 0;
  for (int64_t t0 = 0; t0 < n; t0 += kBlock) {
    const int64_t end = std::min(n, t0 + kBlock);
    float lu[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t t = t0;
    for (; t + 8 <= end; t += 8) {
      for (int k = 0; k < 8; ++k) {
        lu[k] += u[t + k];
        lv[k] += v[t + k];
      }
    }
    for (; t < end; ++t) {
      lu[0] += u[t];
      lv[0] += v[t];
    }
    for (int k = 0; k < 8; ++k) {
      total_u += lu[k];
      total_v += lv[k];
    }
  }
  *su += total_u;
  *sv += total_v;
}

void moments_kernel(const at::Tensor& x, double* sum, double* sumsq) {
  const int64_t c = x.size(1), l = x.size(2);
  const float* px = x.data_ptr<float>();
  for_each_channel(c, l, [&](int64_t ch) {
    const float* in = px + ch * l;
    float sq[kBlock];
    for (int64_t t0 = 0; t0 < l; t0 += kBlock) {
      const int64_t n = std::min(kBlock, l - t0);
      for (int64_t t = 0; t < n; ++t) sq[t] = in[t0 + t] * in[t0 + t];
      add_sums(in + t0, sq, n, sum + ch, sumsq + ch);
    }
  });
}

// y = a*x + c per channel, clamped at 0 when Relu.
template <bool Relu>
void forward_channel(const float* in, float* out, int64_t l, float a, float c) {
  for (int64_t t = 0; t < l; ++t) {
    const float y = in[t] * a + c;
    out[t] = Relu ? (y > 0.0f ? y : 0.0f) : y;
  }
}

at::Tensor forward_kernel(const at::Tensor& x, const float* a, const float* c, bool relu) {
  auto y = at::empty_like(x);
  const int64_t l = x.size(2);
  const float* px = x.data_ptr<float>();
  float* py = y.data_ptr<float>();
  for_each_channel(x.size(1), l, [&](int64_t ch) {
    (relu ? forward_channel<true> : forward_channel<false>)(px + ch * l, py + ch * l, l, a[ch], c[ch]);
  });
  return y;
}

// g = dy, zeroed where the ReLU (if any) blocked: a*x + c <= 0.
template <bool Relu>
void gate(const float* in, const float* dy, float* g, int64_t n, float a, float c) {
  for (int64_t t = 0; t < n; ++t) {
    const float d = dy[t];  // loaded unconditionally, so the select vectorizes
    g[t] = !Relu || in[t] * a + c > 0.0f ? d : 0.0f;
  }
}

// Sums of g and g*x per channel.
void gradient_sums_kernel(const at::Tensor& dy, const at::Tensor& x, const float* a, const float* c, bool relu,
                          double* sum_g, double* sum_gx) {
  const int64_t l = x.size(2);
  const float* px = x.data_ptr<float>();
  const float* pg = dy.data_ptr<float>();
  for_each_channel(x.size(1), l, [&](int64_t ch) {
    const float* in = px + ch * l;
    const float* d = pg + ch * l;
    float g[kBlock], gx[kBlock];
    for (int64_t t0 = 0; t0 < l; t0 += kBlock) {
      const int64_t n = std::min(kBlock, l - t0);
      (relu ? gate<true> : gate<false>)(in + t0, d + t0, g, n, a[ch], c[ch]);
      for (int64_t t = 0; t < n; ++t) gx[t] = g[t] * in[t0 + t];
      add_sums(g, gx, n, sum_g + ch, sum_gx + ch);
    }
  });
}

// dx = k_dy*g + k_x*x + k_1 per channel, g gated as above.
template <bool Relu>
void input_gradient_channel(const float* in, const float* dy, float* out, int64_t l, float a, float c, float kd,
                            float kx, float k1) {
  for (int64_t t = 0; t < l; ++t) {
    const float d = dy[t];
    const float g = !Relu || in[t] * a + c > 0.0f ? d : 0.0f;
    out[t] = g * kd + in[t] * kx + k1;
  }
}

at::Tensor input_gradient_kernel(const at::Tensor& dy, const at::Tensor& x, const float* a, const float* c, bool relu,
                                 const float* k_dy, const float* k_x, const float* k_1) {
  auto dx = at::empty_like(x);
  const int64_t l = x.size(2);
  const float* px = x.data_ptr<float>();
  const float* pg = dy.data_ptr<float>();
  float* pd = dx.data_ptr<float>();
  for_each_channel(x.size(1), l, [&](int64_t ch) {
    (relu ? input_gradient_channel<true> : input_gradient_channel<false>)(px + ch * l, pg + ch * l, pd + ch * l, l,
                                                                         a[ch], c[ch], k_dy[ch], k_x[ch], k_1[ch]);
  });
  return dx;
}

// ------------------------------------------------------------ autograd

at::Tensor per_channel(const at::Tensor& v) { return v.view({1, -1, 1}); }

// Scale and shift of the normalization: y = a*x + c.
std::pair<at::Tensor, at::Tensor> affine(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& mean,
                                         const at::Tensor& variance, double eps) {
  auto a = (weight * torch::rsqrt(variance + eps)).contiguous();
  auto c = (bias - mean * a).contiguous();
  return {a, c};
}

// Inputs: the maps, weight, bias, mean, variance (the last two are constants
// here: their dependence on the maps is in the backward formula).
class PooledBatchNormFn : public torch::autograd::Function<PooledBatchNormFn> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList xs, const at::Tensor& weight,
                               const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& variance,
                               int64_t frames, double eps, bool relu, int64_t stats) {
    auto [a, c] = affine(weight, bias, mean, variance, eps);
    variable_list ys;
    ys.reserve(xs.size());
    for (const auto& x : xs) {
      if (use_cpu_kernels(x)) {
        ys.push_back(forward_kernel(x, a.data_ptr<float>(), c.data_ptr<float>(), relu));
      } else {
        auto y = at::addcmul(per_channel(c), x, per_channel(a));
        ys.push_back(relu ? y.relu_() : y);
      }
    }
    variable_list saved(xs.begin(), xs.end());
    for (const auto& t : {weight, mean, variance, a, c}) saved.push_back(t);
    ctx->save_for_backward(saved);
    ctx->saved_data["frames"] = frames;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["relu"] = relu;
    ctx->saved_data["stats"] = stats;
    return ys;
  }

  static variable_list backward(AutogradContext* ctx, variable_list dys) {
    auto saved = ctx->get_saved_variables();
    const size_t n = saved.size() - 5;
    const Saved st{saved[n],     saved[n + 1], saved[n + 2], saved[n + 3], saved[n + 4],
                   static_cast<double>(ctx->saved_data["frames"].toInt()), ctx->saved_data["eps"].toDouble(),
                   ctx->saved_data["relu"].toBool()};
    auto* stats = reinterpret_cast<BatchStatistics*>(ctx->saved_data["stats"].toInt());
    std::vector<at::Tensor> xs(saved.begin(), saved.begin() + static_cast<std::ptrdiff_t>(n)), gated(n);
    auto [sum_g, sum_gx] = gradient_sums(xs, dys, st, gated);
    if (stats && stats->synchronized()) {
      // The global batch's sums: batch norm's statistics span every rank.
      const int64_t c = st.weight.size(0);
      auto packed = torch::cat({sum_g, sum_gx, torch::zeros({1}, sum_g.options())});
      stats->sum(packed);
      sum_g = packed.narrow(0, 0, c).clone();
      sum_gx = packed.narrow(0, c, c).clone();
    }
    return input_gradients(xs, dys, gated, st, sum_g, sum_gx);
  }

 private:
  struct Saved {
    const at::Tensor &weight, &mean, &variance, &a, &c;
    double frames, eps;
    bool relu;
  };

  // Pass 1: per-channel sums of the (ReLU-gated) gradient and of gradient *
  // input, in float64 on the CPU. `gated` keeps the gated gradients of the
  // maps the CPU kernels do not take.
  static std::pair<at::Tensor, at::Tensor> gradient_sums(const std::vector<at::Tensor>& xs, variable_list& dys,
                                                         const Saved& st, std::vector<at::Tensor>& gated) {
    const auto f64 = st.weight.options().dtype(at::kDouble).device(at::kCPU);
    auto sum_g = torch::zeros({st.weight.size(0)}, f64), sum_gx = torch::zeros({st.weight.size(0)}, f64);
    for (size_t i = 0; i < xs.size(); ++i) {
      const auto& x = xs[i];
      dys[i] = dys[i].contiguous();
      if (use_cpu_kernels(x)) {  // a, c and the k_* live with the weight, on x's device
        gradient_sums_kernel(dys[i], x, st.a.data_ptr<float>(), st.c.data_ptr<float>(), st.relu,
                             sum_g.data_ptr<double>(), sum_gx.data_ptr<double>());
      } else {
        auto g = st.relu ? dys[i] * (at::addcmul(per_channel(st.c), x, per_channel(st.a)) > 0) : dys[i];
        sum_g += g.sum(at::IntArrayRef{0, 2}).to(f64);
        sum_gx += (g * x).sum(at::IntArrayRef{0, 2}).to(f64);
        gated[i] = g;
      }
    }
    return {sum_g, sum_gx};
  }

  // Pass 2. d_bias = sum(g); d_weight = sum(g * x_hat) = r * (sum(g*x) -
  // mean * sum(g)), r = 1/sqrt(var + eps); dx = weight*r * (g - d_bias/N -
  // x_hat * d_weight/N) = k_dy*g + k_x*x + k_1.
  static variable_list input_gradients(const std::vector<at::Tensor>& xs, const variable_list& dys,
                                       const std::vector<at::Tensor>& gated, const Saved& st,
                                       const at::Tensor& sum_g, const at::Tensor& sum_gx) {
    const auto f64 = sum_g.options();
    auto mean64 = st.mean.to(f64), r = torch::rsqrt(st.variance.to(f64) + st.eps);
    auto d_bias = sum_g, d_weight = r * (sum_gx - mean64 * sum_g);
    auto k_dy = st.weight.to(f64) * r;
    auto k_x = -k_dy * r * d_weight / st.frames;
    auto k_1 = -k_dy * d_bias / st.frames - k_x * mean64;
    auto as_param = [&](const at::Tensor& t) { return t.to(st.weight.options()).contiguous(); };
    k_dy = as_param(k_dy);
    k_x = as_param(k_x);
    k_1 = as_param(k_1);
    variable_list grads;
    grads.reserve(xs.size() + 8);
    for (size_t i = 0; i < xs.size(); ++i) {
      const auto& x = xs[i];
      if (use_cpu_kernels(x)) {
        grads.push_back(input_gradient_kernel(dys[i], x, st.a.data_ptr<float>(), st.c.data_ptr<float>(), st.relu,
                                              k_dy.data_ptr<float>(), k_x.data_ptr<float>(),
                                              k_1.data_ptr<float>()));
      } else {
        grads.push_back(at::addcmul(per_channel(k_1), x, per_channel(k_x)).addcmul_(gated[i], per_channel(k_dy)));
      }
    }
    grads.push_back(as_param(d_weight));
    grads.push_back(as_param(d_bias));
    grads.resize(xs.size() + 8);  // mean, variance, frames, eps, relu, stats: no gradient
    return grads;
  }
};

}  // namespace

PooledMoments pooled_moments(const std::vector<at::Tensor>& xs, int64_t channels, BatchStatistics* stats) {
  torch::NoGradGuard no_grad;
  PooledMoments m;
  auto f64 = torch::TensorOptions().dtype(at::kDouble);
  auto sum = torch::zeros({channels}, f64), sumsq = torch::zeros({channels}, f64);
  for (const auto& x : xs) {
    if (use_cpu_kernels(x)) {
      moments_kernel(x, sum.data_ptr<double>(), sumsq.data_ptr<double>());
    } else {
      auto xd = x.to(at::kDouble);
      sum += xd.sum(at::IntArrayRef{0, 2}).cpu();
      sumsq += xd.pow(2).sum(at::IntArrayRef{0, 2}).cpu();
    }
    m.frames += x.size(0) * x.size(2);
  }
  if (stats && stats->synchronized()) {
    auto packed = torch::cat({sum, sumsq, torch::full({1}, double(m.frames), f64)});
    stats->sum(packed);
    sum = packed.narrow(0, 0, channels);
    sumsq = packed.narrow(0, channels, channels);
    m.frames = static_cast<int64_t>(packed[2 * channels].item<double>());
  }
  // Sums of squares in double: the cancellation in E[x^2] - E[x]^2 only
  // matters when |mean| / std exceeds ~1e6, far from any activation.
  const double n = static_cast<double>(std::max<int64_t>(1, m.frames));
  auto mean = sum / n;
  auto variance = (sumsq / n - mean * mean).clamp_min(0.0);
  const auto opts = xs.empty() ? torch::TensorOptions().dtype(at::kFloat) : xs[0].options();
  m.mean = mean.to(opts);
  m.variance = variance.to(opts);
  m.total = torch::full({1}, double(m.frames), f64);
  return m;
}

std::vector<at::Tensor> pooled_batch_norm(const std::vector<at::Tensor>& xs, const at::Tensor& weight,
                                          const at::Tensor& bias, const PooledMoments& moments, double eps,
                                          bool relu, BatchStatistics* stats) {
  if (xs.empty()) {
    // This rank has no utterance but the others do: it still joins the
    // backward's statistics sum, through a zero-sized contribution.
    if (stats && stats->synchronized()) {
      auto packed = torch::zeros({2 * weight.size(0) + 1}, torch::kDouble);
      stats->sum(packed);
    }
    return {};
  }
  return PooledBatchNormFn::apply(at::TensorList(xs), weight, bias, moments.mean, moments.variance,
                                  moments.frames, eps, relu, reinterpret_cast<int64_t>(stats));
}

}  // namespace asr::model

namespace asr::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Sums over (batch, time) of each channel, in float64 for the combination of
// moments; the reduction itself runs in float32 on the tensor's device.
at::Tensor channel_sums(const at::Tensor& v) { return v.sum(at::IntArrayRef{0, 2}).to(at::kDouble); }

class MaskedBatchNormFn : public torch::autograd::Function<MaskedBatchNormFn> {
 public:
  // Inputs: x, mask, weight, bias; the rest are constants.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& mask,
                               const at::Tensor& weight, const at::Tensor& bias, int64_t frames, double eps,
                               bool relu, int64_t stats_ptr) {
    auto* stats = reinterpret_cast<BatchStatistics*>(stats_ptr);
    const int64_t c = x_in.size(1);
    auto x = x_in.to(at::kFloat);
    auto xm = x * mask;
    auto packed = torch::cat({channel_sums(xm), channel_sums(xm * x),
                              torch::full({1}, double(frames), x.options().dtype(at::kDouble))});
    if (stats) stats->sum(packed);  // the global batch's moments when synchronized
    // The total frame count stays a device tensor: no host read inside a layer.
    auto n = packed.narrow(0, 2 * c, 1).clamp_min(1.0);
    auto mean = packed.narrow(0, 0, c) / n;
    auto variance = (packed.narrow(0, c, c) / n - mean * mean).clamp_min(0.0);
    auto a = (weight.to(at::kDouble) * torch::rsqrt(variance + eps)).to(at::kFloat);
    auto shift = (bias.to(at::kDouble) - mean * a.to(at::kDouble)).to(at::kFloat);
    auto y = at::addcmul(shift.view({1, -1, 1}), x, a.view({1, -1, 1}));
    if (relu) y = y.relu_();
    y = y * mask;
    ctx->save_for_backward({x, mask, weight, a, shift, mean, variance, n});
    ctx->saved_data["relu"] = relu;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["stats"] = stats_ptr;
    ctx->saved_data["input_type"] = static_cast<int64_t>(x_in.scalar_type());
    return {y, mean.to(at::kFloat), variance.to(at::kFloat), n};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &mask = saved[1], &weight = saved[2], &a = saved[3], &shift = saved[4];
    const auto &mean = saved[5], &variance = saved[6], &n = saved[7];
    const bool relu = ctx->saved_data["relu"].toBool();
    const double eps = ctx->saved_data["eps"].toDouble();
    auto* stats = reinterpret_cast<BatchStatistics*>(ctx->saved_data["stats"].toInt());
    const int64_t c = x.size(1);
    auto g = grads[0].to(at::kFloat) * mask;
    if (relu) g = g * (at::addcmul(shift.view({1, -1, 1}), x, a.view({1, -1, 1})) > 0);
    auto packed = torch::cat({channel_sums(g), channel_sums(g * x), torch::zeros({1}, n.options())});
    if (stats) stats->sum(packed);
    auto sum_g = packed.narrow(0, 0, c), sum_gx = packed.narrow(0, c, c);
    // As in the per-utterance kernel: dx = k_dy*g + k_x*x + k_1.
    auto r = torch::rsqrt(variance + eps);
    auto d_weight = r * (sum_gx - mean * sum_g);
    auto k_dy = weight.to(at::kDouble) * r;
    auto k_x = -k_dy * r * d_weight / n;
    auto k_1 = -k_dy * sum_g / n - k_x * mean;
    auto as_map = [](const at::Tensor& t) { return t.to(at::kFloat).view({1, -1, 1}); };
    auto dx = at::addcmul(as_map(k_1), x, as_map(k_x)).addcmul_(g, as_map(k_dy)) * mask;
    const auto input_type = static_cast<at::ScalarType>(ctx->saved_data["input_type"].toInt());
    return {dx.to(input_type), at::Tensor(), d_weight.to(weight.scalar_type()), sum_g.to(weight.scalar_type()),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor masked_batch_norm(const at::Tensor& x, const at::Tensor& mask, int64_t frames, const at::Tensor& weight,
                             const at::Tensor& bias, double eps, bool relu, BatchStatistics* stats,
                             PooledMoments* moments) {
  auto out = MaskedBatchNormFn::apply(x, mask, weight, bias, frames, eps, relu, reinterpret_cast<int64_t>(stats));
  if (moments) {
    moments->mean = out[1].detach();
    moments->variance = out[2].detach();
    moments->total = out[3].detach();
  }
  return out[0];
}

}  // namespace asr::model
