#include "asr/distributed/device.h"

#include <fmt/format.h>
#include <sys/resource.h>

#ifdef ASR_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1  // NCCLUtils.hpp declares its API only with it
#endif
#include <torch/csrc/distributed/c10d/NCCLUtils.hpp>
#endif

namespace asr::distributed {

bool cuda_built() {
#ifdef ASR_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int visible_gpus() {
#ifdef ASR_WITH_CUDA
  try {
    return static_cast<int>(c10::cuda::device_count());
  } catch (const std::exception&) {
    return 0;  // no driver: a CUDA build on a CPU node
  }
#else
  return 0;
#endif
}

DeviceChoice choose_device(const std::string& policy, int local_rank) {
  DeviceChoice c;
  if (policy == "cpu") return c;
  const int gpus = visible_gpus();
  if (gpus > 0) {
    c.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % gpus));
    return c;
  }
  if (policy == "cuda")
    c.problem = cuda_built() ? "train.device = \"cuda\" but this process sees no GPU (check CUDA_VISIBLE_DEVICES and "
                               "the driver)"
                             : "train.device = \"cuda\" but this build's LibTorch has no CUDA (docs/building.md)";
  return c;
}

namespace {

int64_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // kilobytes on Linux
}

#ifdef ASR_WITH_CUDA
std::string uuid_text(const cudaDeviceProp& p) {
  std::string out = "GPU-";
  for (int i = 0; i < 16; ++i) out += fmt::format("{:02x}", static_cast<unsigned char>(p.uuid.bytes[i]));
  return out;
}

std::string versions() {
  const long cudnn = at::detail::getCUDAHooks().versionCuDNN();
  // cuDNN >= 9 encodes major*10000 + minor*100 + patch. The NCCL version is
  // the one LibTorch loaded, asked through LibTorch: calling ncclGetVersion
  // ourselves would link libnccl directly, which the PyTorch wheel keeps in a
  // pip package of its own (the trixie full check caught that link error).
  return fmt::format("CUDA {}.{}, cuDNN {}.{}.{}, NCCL {}", CUDA_VERSION / 1000, (CUDA_VERSION % 1000) / 10,
                     cudnn / 10000, (cudnn / 100) % 100, cudnn % 100, c10d::getNcclVersion());
}
#endif

}  // namespace

DeviceInfo describe_device(const c10::Device& device) {
  DeviceInfo info;
  if (!device.is_cuda()) {
    info.name = "CPU";
    info.identity = "cpu";
    return info;
  }
#ifdef ASR_WITH_CUDA
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(device.index());
  info.name = p->name;
  info.memory_bytes = static_cast<int64_t>(p->totalGlobalMem);
  info.identity = uuid_text(*p);
  info.versions = versions();
#endif
  return info;
}

MemoryStats memory_stats(const c10::Device& device) {
  MemoryStats m;
  if (!device.is_cuda()) {
    m.peak_allocated = m.peak_reserved = peak_rss_bytes();
    return m;
  }
#ifdef ASR_WITH_CUDA
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  m.peak_allocated = stats.allocated_bytes[0].peak;  // [0]: all pools together
  m.peak_reserved = stats.reserved_bytes[0].peak;
#endif
  return m;
}

void reset_peak_memory(const c10::Device& device) {
#ifdef ASR_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

void release_cached_memory(const c10::Device& device) {
#ifdef ASR_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#else
  (void)device;
#endif
}

void set_current_device(const c10::Device& device) {
#ifdef ASR_WITH_CUDA
  if (device.is_cuda()) c10::cuda::set_device(device.index());
#else
  (void)device;
#endif
}

}  // namespace asr::distributed
