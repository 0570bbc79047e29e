// NCCL on the rank's GPU. Compiled only when LibTorch has CUDA; CI compiles
// it against Debian's CUDA LibTorch 2.6 (scripts/check-libtorch2.sh --compile).
#include "c10d_communicator.h"

#ifdef ASR_WITH_CUDA
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

namespace asr::distributed {

bool nccl_usable(int local_rank) {
  try {
    return local_rank >= 0 && local_rank < int(c10::cuda::device_count());
  } catch (const std::exception&) {
    return false;  // no driver: a CUDA build on a CPU node
  }
}

std::unique_ptr<Communicator> make_nccl_communicator(const GroupSpec& spec) {
  // Without blocking wait, ProcessGroupNCCL ignores the timeout given to
  // wait(); with async error handling a stuck communicator is aborted.
  // Both spellings: 1.13 reads NCCL_*, 2.x TORCH_NCCL_*.
  setenv("NCCL_BLOCKING_WAIT", "1", 0);
  setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
  setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
  setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", 0);
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(spec.local_rank));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = spec.timeout;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> pg;
  try {
    pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(spec.session->store, spec.rank, spec.world_size, options);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw CollectiveError(fmt::format("rank {}: could not create the NCCL process group on cuda:{}: {}", spec.rank,
                                      spec.local_rank, what));
  }
  return std::make_unique<C10dCommunicator<c10d::ProcessGroupNCCL>>(
      pg, spec, "nccl", c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(spec.local_rank)));
}

}  // namespace asr::distributed

#else

namespace asr::distributed {
bool nccl_usable(int) { return false; }
}  // namespace asr::distributed

#endif
