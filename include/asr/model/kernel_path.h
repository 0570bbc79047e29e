// Which implementation a layer runs. The CPU path is tuned for few cores:
// every utterance at its own length, fused loops, fixed-shape conv chunks,
// hashed dropout masks. A GPU wants the opposite: the whole padded batch in a
// few large kernels, masks instead of per-utterance loops, and no host
// synchronization inside a layer. Both compute the same function (tests run
// the generic path on the CPU and compare).
#pragma once
#include <ATen/core/Tensor.h>

namespace asr::model {

enum class KernelPath {
  automatic,  // CPU-specialized for CPU tensors, generic on every other device
  generic,    // the device-generic path everywhere (for tests, and to compare speeds)
};

inline bool use_generic(KernelPath path, const at::Tensor& x) {
  return path == KernelPath::generic || !x.device().is_cpu();
}

}  // namespace asr::model
