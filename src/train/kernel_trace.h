// A Chrome trace of LibTorch's profiler (CPU ops and, on a GPU, every kernel)
// over a few training steps, for finding where a step's time goes:
//   ASR_TRACE=FILE:FIRST:STEPS   trace steps FIRST..FIRST+STEPS-1 (from 1) into FILE
// (rank N > 0 writes FILE.rankN). bench/gpu/analyze_trace.py sums the kernel
// time of convolutions and matmuls against the step time. Off unless set.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace asr {

class KernelTrace {
 public:
  // nullptr when ASR_TRACE is unset; throws asr::Error for a malformed value.
  static std::unique_ptr<KernelTrace> from_environment(int rank);
  ~KernelTrace();

  // Around every step (step counted from 1).
  void before_step(int64_t step);
  void after_step(int64_t step);

 private:
  std::string path_;
  int64_t first_ = 0, last_ = 0;
  bool active_ = false;
};

}  // namespace asr
