// Mixed precision: bfloat16 autocast for convolutions, matmuls and attention,
// with float32 master weights (the optimizer never sees bfloat16) and the
// numerically sensitive parts in float32: log-softmax and CTC, normalization
// statistics, RVQ distances and codebook statistics (docs/training.md).
//
// LibTorch's autocast switches changed their C++ names in 2.4 (one call per
// device type instead of one per device); this is the one place that knows.
#pragma once
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace asr::model {

// Autocast on `device_type` (CUDA or CPU) to `dtype` while alive; restores
// the previous state and drops the cast-weight cache when the outermost
// guard ends. `enabled` = false makes it a no-op.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device_type, c10::ScalarType dtype, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_type_;
  bool active_ = false, was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Float;
};

// Autocast off (on every device type) while alive: for the code that must
// stay in float32 inside an autocast region.
class AutocastDisabled {
 public:
  AutocastDisabled();
  ~AutocastDisabled();
  AutocastDisabled(const AutocastDisabled&) = delete;
  AutocastDisabled& operator=(const AutocastDisabled&) = delete;

 private:
  bool cpu_ = false, cuda_ = false;
};

// Whether autocast is on for this device type in this thread.
bool autocast_enabled(c10::DeviceType device_type);

// TF32 tensor cores for float32 matmuls and convolutions on CUDA (a no-op
// elsewhere): ~8x the float32 throughput with a 10-bit mantissa.
void set_tf32(bool enabled);

}  // namespace asr::model
