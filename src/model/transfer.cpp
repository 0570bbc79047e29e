#include "asr/model/transfer.h"

#include <ATen/ATen.h>

namespace asr::model {

at::Tensor to_device(const at::Tensor& host, const c10::Device& device) {
  if (host.device() == device) return host;
  if (!host.device().is_cpu() || device.is_cpu()) return host.to(device);
  // The caching host allocator keeps the pinned block alive until the copy
  // has finished, so the temporary may go out of scope right away.
  auto pinned = host.is_pinned() ? host : host.pin_memory();
  return pinned.to(device, /*non_blocking=*/true);
}

}  // namespace asr::model
