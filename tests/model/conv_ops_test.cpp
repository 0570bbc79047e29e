#include "asr/model/conv_ops.h"
#include "asr/model/cpu_convolution_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <torch/torch.h>

using namespace asr::model;

namespace {

// Values and gradients (input, weight, bias) of `ours` against `reference`.
template <class Ours, class Reference>
void expect_same_conv(at::Tensor x, at::Tensor w, at::Tensor b, Ours ours, Reference reference) {
  auto run = [&](auto f) {
    auto xi = x.detach().clone().requires_grad_(), wi = w.detach().clone().requires_grad_();
    auto bi = b.defined() ? b.detach().clone().requires_grad_() : at::Tensor();
    auto y = f(xi, wi, bi);
    torch::manual_seed(9);
    y.mul(torch::randn_like(y)).sum().backward();
    return std::make_tuple(y.detach(), xi.grad(), wi.grad(), bi.defined() ? bi.grad() : at::Tensor());
  };
  auto [y1, gx1, gw1, gb1] = run(ours);
  auto [y2, gx2, gw2, gb2] = run(reference);
  ASSERT_EQ(y1.sizes(), y2.sizes());
  EXPECT_TRUE(torch::allclose(y1, y2, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(gx1, gx2, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(gw1, gw2, 1e-4, 1e-4));
  if (gb1.defined()) EXPECT_TRUE(torch::allclose(gb1, gb2, 1e-4, 1e-4));
}

}  // namespace

TEST(ConvOps, OneInputChannelEqualsConv1d) {
  torch::manual_seed(1);
  for (int64_t len : {8L, 9L, 50L, 1001L}) {
    expect_same_conv(torch::randn({1, 1, len}), torch::randn({16, 1, 8}), at::Tensor(),
                     [](auto x, auto w, auto) { return conv1d_one_input_channel(x, w); },
                     [](auto x, auto w, auto) { return at::conv1d(x, w); });
  }
}

TEST(ConvOps, PointwiseEqualsStridedOneByOneConv) {
  torch::manual_seed(2);
  for (int64_t cin : {1L, 5L}) {
    for (int64_t stride : {1L, 3L, 4L}) {
      for (int64_t len : {1L, 4L, 17L, 400L}) {
        expect_same_conv(torch::randn({1, cin, len}), torch::randn({7, cin, 1}), torch::randn({7}),
                         [stride](auto x, auto w, auto b) { return conv1d_pointwise(x, w, b, stride); },
                         [stride](auto x, auto w, auto b) { return at::conv1d(x, w, b, at::IntArrayRef{stride}); });
      }
    }
  }
}

TEST(ConvOps, ChunkedEqualsConv1d) {
  torch::manual_seed(3);
  // Chunk boundaries inside, at and beyond the padding; lengths that leave a
  // partial last chunk; with and without bias.
  for (int64_t len : {9L, 64L, 301L}) {
    for (int64_t chunk : {1L, 7L, 512L}) {
      for (bool bias : {true, false}) {
        expect_same_conv(torch::randn({1, 5, len}), torch::randn({6, 5, 8}), bias ? torch::randn({6}) : at::Tensor(),
                         [chunk](auto x, auto w, auto b) { return conv1d_chunked(x, w, b, 4, 2, 2, chunk); },
                         [](auto x, auto w, auto b) {
                           return at::conv1d(x, w, b, at::IntArrayRef{4}, at::IntArrayRef{2});
                         });
      }
    }
  }
}

TEST(ConvOps, ChunkedLeavesUnreadFramesZero) {
  // Stride above the kernel: some input frames feed no output at all.
  torch::manual_seed(4);
  for (int64_t chunk : {1L, 3L, 100L}) {
    expect_same_conv(torch::randn({1, 3, 43}), torch::randn({2, 3, 2}), torch::randn({2}),
                     [chunk](auto x, auto w, auto b) { return conv1d_chunked(x, w, b, 5, 1, 1, chunk); },
                     [](auto x, auto w, auto b) { return at::conv1d(x, w, b, at::IntArrayRef{5}, at::IntArrayRef{1}); });
  }
}

TEST(ConvOps, ChunkedTakesAsymmetricPaddingLikeAnEvenSameConv) {
  torch::manual_seed(5);
  for (int64_t len : {1L, 7L, 8L, 200L}) {
    for (int64_t chunk : {3L, 64L}) {
      expect_same_conv(torch::randn({1, 4, len}), torch::randn({5, 4, 8}), torch::randn({5}),
                       [chunk](auto x, auto w, auto b) { return conv1d_chunked(x, w, b, 1, 3, 4, chunk); },
                       [](auto x, auto w, auto b) { return at::conv1d(at::constant_pad_nd(x, {3, 4}), w, b); });
    }
  }
}


// The other tests compare our convolutions with LibTorch's in float32; this
// one holds LibTorch's float32 convolution gradients to float64 (the
// transposed convolution computed in float64), after the process-wide check
// has had its say. Debian trixie's LibTorch 2.6 fails it without the check.
TEST(CpuConvolution, Float32GradientsMatchFloat64AfterTheCheck) {
  const auto& check = asr::model::check_cpu_convolution_gradients();
  EXPECT_FALSE(std::isnan(check.relative_error));  // infinite when the faulty path returned NaN
  EXPECT_EQ(check.onednn_disabled, check.relative_error > 1e-4);
  EXPECT_EQ(check.onednn_disabled, !check.message.empty());
  torch::manual_seed(2);
  for (int64_t stride : {1, 4}) {
    SCOPED_TRACE(stride);
    auto x = torch::randn({3, 8, 250}).requires_grad_();
    auto w = torch::randn({8, 8, 8}).requires_grad_();
    auto y = at::conv1d(x, w, {}, at::IntArrayRef{stride});
    auto g = torch::randn(y.sizes());
    y.backward(g);
    auto gd = g.to(torch::kDouble);
    auto expected_x = at::conv_transpose1d(gd, w.detach().to(torch::kDouble), {}, at::IntArrayRef{stride}, 0,
                                           x.size(2) - ((y.size(2) - 1) * stride + 8));
    // dW[o, i, k] = sum over b, t of g[b, o, t] x[b, i, t * stride + k]: a
    // convolution of x by g with dilation = stride.
    auto expected_w = at::conv1d(x.detach().to(torch::kDouble).transpose(0, 1), gd.transpose(0, 1), at::Tensor(),
                                 at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{stride})
                          .transpose(0, 1);
    auto rel = [](const at::Tensor& a, const at::Tensor& b) {
      return (a.to(torch::kDouble) - b).abs().max().item<double>() / b.abs().max().item<double>();
    };
    EXPECT_LE(rel(x.grad(), expected_x), 1e-4);
    EXPECT_LE(rel(w.grad(), expected_w.narrow(2, 0, 8)), 1e-4);
  }
}
