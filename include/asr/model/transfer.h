// Host tensors onto a device without stalling it. A plain .to(cuda) of
// pageable host memory waits for every kernel queued on the stream; a
// non-blocking copy out of pinned memory does not. On the CPU both are no-ops.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace asr::model {

at::Tensor to_device(const at::Tensor& host, const c10::Device& device);

}  // namespace asr::model
