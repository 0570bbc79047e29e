#include "asr/model/cpu_convolution_check.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <array>
#include <mutex>

namespace asr::model {

namespace {

// The input and weight gradients of conv1d(x, w) for a fixed random problem,
// in `dtype`, returned in float64. No autograd: the op that autograd calls,
// asked for both gradients as a training step asks.
std::array<at::Tensor, 2> gradients(at::ScalarType dtype, int64_t stride, int64_t length) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  auto x = at::randn({3, 8, length}, gen, opts).to(dtype);
  auto w = at::randn({8, 8, 8}, gen, opts).to(dtype);
  auto g = at::randn({3, 8, (length - 8) / stride + 1}, gen, opts).to(dtype);
  {
    // The faulty path leaves parts of its result as it found the memory;
    // freed blocks of the result's size full of NaN make that show every time.
    auto poison_x = at::full(x.sizes(), NAN, x.options());
    auto poison_w = at::full(w.sizes(), NAN, w.options());
  }
  auto grads =
      at::convolution_backward(g, x, w, c10::nullopt, {stride}, {0}, {1}, false, {0}, 1, {true, true, false});
  return {std::get<0>(grads).to(at::kDouble), std::get<1>(grads).to(at::kDouble)};
}

double relative_error() {
  double worst = 0.0;
  for (int64_t stride : {1, 4})
    for (int64_t length : {200, 1000}) {
      const auto low = gradients(at::kFloat, stride, length), high = gradients(at::kDouble, stride, length);
      for (size_t i = 0; i < low.size(); ++i) {
        const double e = (low[i] - high[i]).abs().max().item<double>() /
                         std::max(high[i].abs().max().item<double>(), 1e-12);
        worst = std::isfinite(e) ? std::max(worst, e) : std::numeric_limits<double>::infinity();
      }
    }
  return worst;
}

CpuConvolutionCheck run_check() {
  CpuConvolutionCheck r;
  r.relative_error = relative_error();
  if (r.relative_error <= 1e-4) return r;
  at::globalContext().setUserEnabledMkldnn(false);
  const double after = relative_error();
  r.onednn_disabled = true;
  r.message = fmt::format(
      "this LibTorch's float32 CPU convolution backward is wrong (gradients off by {:.2g} relative to "
      "float64); oneDNN convolutions are switched off for this process, which gives {:.2g}",
      r.relative_error, after);
  if (after > 1e-4) r.message += " (still wrong: do not train with this LibTorch on a CPU)";
  return r;
}

}  // namespace

const CpuConvolutionCheck& check_cpu_convolution_gradients() {
  static std::once_flag once;
  static CpuConvolutionCheck result;
  std::call_once(once, [] { result = run_check(); });
  return result;
}

}  // namespace asr::model
