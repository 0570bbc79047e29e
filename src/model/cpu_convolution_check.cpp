#include "asr/model/cpu_convolution_check.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <mutex>

namespace asr::model {

namespace {

// The input and weight gradients of conv1d(x, w) for a fixed random problem,
// in `dtype`, returned in float64. No autograd: the op that autograd calls,
// asked for both gradients as a training step asks (the faulty builds get
// them wrong only then).
std::array<at::Tensor, 2> gradients(at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  auto x = at::randn({3, 8, 200}, gen, opts).to(dtype);
  auto w = at::randn({8, 8, 8}, gen, opts).to(dtype);
  auto g = at::randn({3, 8, 193}, gen, opts).to(dtype);
  auto grads = at::convolution_backward(g, x, w, c10::nullopt, {1}, {0}, {1}, false, {0}, 1, {true, true, false});
  return {std::get<0>(grads).to(at::kDouble), std::get<1>(grads).to(at::kDouble)};
}

double relative_error() {
  const auto low = gradients(at::kFloat), high = gradients(at::kDouble);
  double worst = 0.0;
  for (size_t i = 0; i < low.size(); ++i)
    worst = std::max(worst, (low[i] - high[i]).abs().max().item<double>() /
                                std::max(high[i].abs().max().item<double>(), 1e-12));
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
