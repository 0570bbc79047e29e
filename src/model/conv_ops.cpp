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

// How a map is cut: chunks of `width` outputs, each reading `span` input
// frames starting at chunk * width * stride - pad_left.
struct Chunking {
  int64_t outputs, width, span, stride, pad_left, len;

  Chunking(int64_t len, int64_t kernel, int64_t stride, int64_t pad_left, int64_t pad_right, int64_t chunk)
      : stride(stride), pad_left(pad_left), len(len) {
    outputs = std::max<int64_t>(0, (len + pad_left + pad_right - kernel) / stride + 1);
    // Short maps get the smallest power of two that holds them, so only a
    // handful of distinct shapes ever reach oneDNN.
    width = chunk;
    while (width / 2 >= outputs && width > 1) width /= 2;
    span = (width - 1) * stride + kernel;
  }
  int64_t first(int64_t j0) const { return j0 * stride - pad_left; }
  // The input frames of the chunk starting at output j0, zero outside the map.
  at::Tensor piece(const at::Tensor& x, int64_t j0) const {
    const int64_t f = first(j0), lo = std::max<int64_t>(0, f), hi = std::min(len, f + span);
    if (hi <= lo) return at::zeros({1, x.size(1), span}, x.options());
    auto inside = x.narrow(2, lo, hi - lo);
    return lo == f && hi == f + span ? inside.contiguous() : at::constant_pad_nd(inside, {lo - f, f + span - hi});
  }
};

class ChunkedConvFn : public torch::autograd::Function<ChunkedConvFn> {
 public:
  // bias is optional: an undefined at::Tensor argument cannot enter autograd.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const c10::optional<at::Tensor>& bias, int64_t stride, int64_t pad_left,
                            int64_t pad_right, int64_t chunk) {
    const Chunking c(x.size(2), weight.size(2), stride, pad_left, pad_right, chunk);
    auto y = at::empty({1, weight.size(0), c.outputs}, x.options());
    for (int64_t j0 = 0; j0 < c.outputs; j0 += c.width) {
      const int64_t n = std::min(c.width, c.outputs - j0);
      auto part = at::conv1d(c.piece(x, j0), weight, bias, at::IntArrayRef{stride});
      y.narrow(2, j0, n).copy_(part.narrow(2, 0, n));
    }
    ctx->save_for_backward({x, weight});
    ctx->saved_data["geometry"] = std::vector<int64_t>{stride, pad_left, pad_right, chunk};
    ctx->saved_data["has_bias"] = bias.has_value();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto g = ctx->saved_data["geometry"].toIntVector();
    const Chunking c(x.size(2), weight.size(2), g[0], g[1], g[2], g[3]);
    const auto& gy = grads[0];
    const bool need_x = x.requires_grad();
    // Chunks run left to right, so the input gradient is written in order:
    // frames a chunk shares with the previous one (kernel > stride) are
    // added, the rest copied, and only frames no output reads are zeroed.
    auto gx = need_x ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::Tensor();
    int64_t written = 0;
    auto gw = torch::zeros_like(weight);
    for (int64_t j0 = 0; j0 < c.outputs; j0 += c.width) {
      const int64_t n = std::min(c.width, c.outputs - j0);
      // The last chunk's missing outputs get zero gradient: same shape as
      // every other chunk, same result.
      auto gy_part = gy.narrow(2, j0, n);
      gy_part = n == c.width ? gy_part.contiguous() : at::constant_pad_nd(gy_part, {0, c.width - n});
      auto [gi, gwi, unused] = at::convolution_backward(gy_part, c.piece(x, j0), weight, c10::nullopt, {c.stride},
                                                        {0}, {1}, false, {0}, 1, {need_x, true, false});
      gw.add_(gwi);
      const int64_t f = c.first(j0), lo = std::max<int64_t>(0, f), hi = std::min(c.len, f + c.span);
      if (!need_x || hi <= lo) continue;
      gi = gi.narrow(2, lo - f, hi - lo);
      if (lo > written) gx.narrow(2, written, lo - written).zero_();
      const int64_t shared = std::max<int64_t>(0, std::min(hi, written) - lo);
      if (shared > 0) gx.narrow(2, lo, shared).add_(gi.narrow(2, 0, shared));
      if (hi - lo > shared) gx.narrow(2, lo + shared, hi - lo - shared).copy_(gi.narrow(2, shared, hi - lo - shared));
      written = std::max(written, hi);
    }
    if (need_x && written < c.len) gx.narrow(2, written, c.len - written).zero_();
    auto gb = ctx->saved_data["has_bias"].toBool() ? gy.sum(at::IntArrayRef{0, 2}) : at::Tensor();
    return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor conv1d_chunked(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                          int64_t pad_left, int64_t pad_right, int64_t chunk) {
  if (x.dim() != 3 || x.size(0) != 1 || weight.dim() != 3 || weight.size(1) != x.size(1) || chunk < 1 ||
      stride < 1 || pad_left < 0 || pad_right < 0) {
    throw asr::Error("conv1d_chunked: expects x [1, C_in, L], weight [C_out, C_in, K], stride and chunk >= 1, "
                     "padding >= 0");
  }
  c10::optional<at::Tensor> maybe_bias;
  if (bias.defined()) maybe_bias = bias;
  return ChunkedConvFn::apply(x, weight, maybe_bias, stride, pad_left, pad_right, chunk);
}

}  // namespace asr::model
