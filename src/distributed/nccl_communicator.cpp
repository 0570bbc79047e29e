// NCCL on the rank's GPU. Compiled only when LibTorch has CUDA; CI compiles
// it against Debian's CUDA LibTorch 2.6 (scripts/check-libtorch2.sh --compile).
#include "c10d_communicator.h"

#ifdef ASR_WITH_CUDA
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

namespace asr::distributed {
namespace {

// Read by ProcessGroupNCCL when it is built (LibTorch 2.x names only; the
// NCCL_* spellings are deprecated). Non-blocking wait: waiting on a
// collective makes the current stream wait for NCCL's, never the host, so the
// gradient buckets overlap backward and the step has no hidden host
// synchronization. Timeouts are bounded on the host where results are read
// (Communicator::read_to_host, under the watchdog: exit 4 naming the rank);
// NCCL's own watchdog does not tear the process down first, so the exit
// status and the message are ours. A user's explicit setting wins.
void configure_nccl_environment() {
  setenv("TORCH_NCCL_BLOCKING_WAIT", "0", 0);
  setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "0", 0);
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const GroupSpec& spec, c10::Device device,
                                                     const std::string& name) {
  configure_nccl_environment();
  c10::cuda::set_device(device.index());
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = spec.timeout;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> pg;
  try {
    auto store = c10::make_intrusive<c10d::PrefixStore>(name + "/", spec.session->store);
    pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, spec.rank, spec.world_size, options);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw CollectiveError(
        fmt::format("rank {}: could not create the NCCL process group on {}: {}", spec.rank, device.str(), what));
  }
  return std::make_unique<C10dCommunicator<c10d::ProcessGroupNCCL>>(
      pg, spec, "nccl", device,
      [spec, device](const std::string& group) { return make_nccl_communicator(spec, device, group); });
}

}  // namespace asr::distributed

#endif
