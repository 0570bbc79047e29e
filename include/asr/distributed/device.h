// The device a rank computes on, and what the log and the metrics say about
// it. CUDA specifics live in device.cpp behind ASR_WITH_CUDA; a CPU build
// answers "no GPU".
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace asr::distributed {

// The train.device setting: "auto" (CUDA when the build has it and the rank
// sees a GPU), "cpu" or "cuda". With CUDA the GPU is local_rank modulo the
// visible GPUs, so per-task binding (each task sees one GPU, as Slurm's
// --gpus-per-task=1 gives) and mpirun (all GPUs visible) both work.
// A rank that cannot have what was asked for says why in `problem` (and
// reports it to the others before anyone builds a process group).
struct DeviceChoice {
  c10::Device device{c10::kCPU};
  std::string problem;  // non-empty: why this rank cannot use what was asked for
};
DeviceChoice choose_device(const std::string& policy, int local_rank);

// Whether this build has CUDA and how many GPUs this process sees.
bool cuda_built();
int visible_gpus();

struct DeviceInfo {
  std::string name;          // "NVIDIA H200" or "CPU"
  int64_t memory_bytes = 0;  // the GPU's memory (0 on the CPU)
  std::string identity;      // the GPU's UUID (two ranks on one GPU have the same), "cpu" otherwise
  std::string versions;      // "CUDA 13.0, cuDNN 9.10, NCCL 2.27.3" (empty on the CPU)
};
DeviceInfo describe_device(const c10::Device& device);

// Peak bytes allocated by tensors and reserved by the caching allocator
// since the last reset (CUDA); the process's peak resident memory on the CPU.
struct MemoryStats {
  int64_t peak_allocated = 0, peak_reserved = 0;
};
MemoryStats memory_stats(const c10::Device& device);
void reset_peak_memory(const c10::Device& device);
// Returns cached, unused device memory to the driver (after an out-of-memory error).
void release_cached_memory(const c10::Device& device);
// Makes `device` the current CUDA device of this thread (no-op on the CPU).
void set_current_device(const c10::Device& device);

}  // namespace asr::distributed
