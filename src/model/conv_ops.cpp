#include "asr/model/conv_ops.h"

#include <torch/torch.h>

#include "asr/core/error.h"

namespace asr::model {

at::Tensor conv1d_one_input_channel(const at::Tensor& x, const at::Tensor& weight) {
  if (x.dim() != 3 || x.size(0) != 1 || x.size(1) != 1 || weight.dim() != 3 || weight.size(1) != 1) {
    throw asr::Error("conv1d_one_input_channel: expects x [1, 1, L] and weight [C, 1, K]");
  }
  const int64_t k = weight.size(2), n = x.size(2) - k + 1;
  if (n < 1) return at::zeros({1, weight.size(0), 0}, x.options());
  // windows[j][t] = x[t + j]: an overlapping view, materialized by mm as a
  // K x n matrix (K times the input, small next to the C x n output).
  const int64_t step = x.stride(2);
  auto windows = x.as_strided({k, n}, {step, step});
  return at::mm(weight.view({weight.size(0), k}), windows).unsqueeze(0);
}

at::Tensor conv1d_pointwise(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride) {
  if (x.dim() != 3 || x.size(0) != 1 || weight.dim() != 3 || weight.size(2) != 1 || weight.size(1) != x.size(1)) {
    throw asr::Error("conv1d_pointwise: expects x [1, C_in, L] and weight [C_out, C_in, 1]");
  }
  auto picked = x.squeeze(0).slice(1, 0, x.size(2), stride);
  auto w = weight.view({weight.size(0), weight.size(1)});
  auto y = bias.defined() ? at::addmm(bias.unsqueeze(1), w, picked) : at::mm(w, picked);
  return y.unsqueeze(0);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class ChunkedBackwardConvFn : public torch::autograd::Function<ChunkedBackwardConvFn> {
 public:
  // bias is optional: an undefined at::Tensor argument cannot enter autograd.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const c10::optional<at::Tensor>& bias, int64_t stride, int64_t padding, int64_t chunk) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["has_bias"] = bias.has_value();
    return at::conv1d(x, weight, bias, at::IntArrayRef{stride}, at::IntArrayRef{padding});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const int64_t s = ctx->saved_data["stride"].toInt(), p = ctx->saved_data["padding"].toInt();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t k = weight.size(2), len = x.size(2);
    auto gy = grads[0];
    const int64_t outputs = gy.size(2);
    const bool need_x = x.requires_grad();
    // Chunks run left to right, so the input gradient is written in order:
    // frames a chunk shares with the previous one (kernel > stride) are
    // added, the rest copied, and only frames no output reads are zeroed.
    auto gx = need_x ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::Tensor();
    int64_t written = 0;
    auto gw = torch::zeros_like(weight);
    for (int64_t j0 = 0; j0 < outputs; j0 += chunk) {
      const int64_t n = std::min(chunk, outputs - j0);
      // Input frames [first, last) feed outputs [j0, j0 + n); outside the
      // map they are the conv's zero padding.
      const int64_t first = j0 * s - p, last = (j0 + n - 1) * s - p + k;
      const int64_t lo = std::max<int64_t>(0, first), hi = std::min(len, last);
      if (hi <= lo) continue;  // only padding under these outputs
      auto piece = x.narrow(2, lo, hi - lo);
      piece = lo == first && hi == last ? piece.contiguous() : at::constant_pad_nd(piece, {lo - first, last - hi});
      auto [gi, gwi, unused] =
          at::convolution_backward(gy.narrow(2, j0, n).contiguous(), piece, weight, c10::nullopt, {s}, {0}, {1},
                                   false, {0}, 1, {need_x, true, false});
      gw.add_(gwi);
      if (!need_x) continue;
      gi = gi.narrow(2, lo - first, hi - lo);
      if (lo > written) gx.narrow(2, written, lo - written).zero_();
      const int64_t shared = std::max<int64_t>(0, std::min(hi, written) - lo);
      if (shared > 0) gx.narrow(2, lo, shared).add_(gi.narrow(2, 0, shared));
      if (hi - lo > shared) gx.narrow(2, lo + shared, hi - lo - shared).copy_(gi.narrow(2, shared, hi - lo - shared));
      written = std::max(written, hi);
    }
    if (need_x && written < len) gx.narrow(2, written, len - written).zero_();
    auto gb = ctx->saved_data["has_bias"].toBool() ? gy.sum(at::IntArrayRef{0, 2}) : at::Tensor();
    return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor conv1d_chunked_backward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                   int64_t stride, int64_t padding, int64_t chunk) {
  if (x.dim() != 3 || x.size(0) != 1 || weight.dim() != 3 || weight.size(1) != x.size(1) || chunk < 1) {
    throw asr::Error("conv1d_chunked_backward: expects x [1, C_in, L], weight [C_out, C_in, K], chunk >= 1");
  }
  c10::optional<at::Tensor> maybe_bias;
  if (bias.defined()) maybe_bias = bias;
  return ChunkedBackwardConvFn::apply(x, weight, maybe_bias, stride, padding, chunk);
}

}  // namespace asr::model
