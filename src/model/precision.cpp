#include "asr/model/precision.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace asr::model {
namespace {

// LibTorch >= 2.4 takes the device type; older versions have one function
// per device type (CUDA's named without it).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool is_enabled(c10::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
void set_enabled(c10::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
c10::ScalarType get_dtype(c10::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
void set_dtype(c10::DeviceType t, c10::ScalarType d) { at::autocast::set_autocast_dtype(t, d); }
#else
bool is_enabled(c10::DeviceType t) {
  return t == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
void set_enabled(c10::DeviceType t, bool on) {
  if (t == c10::DeviceType::CPU)
    at::autocast::set_cpu_enabled(on);
  else
    at::autocast::set_enabled(on);
}
c10::ScalarType get_dtype(c10::DeviceType t) {
  return t == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
void set_dtype(c10::DeviceType t, c10::ScalarType d) {
  if (t == c10::DeviceType::CPU)
    at::autocast::set_autocast_cpu_dtype(d);
  else
    at::autocast::set_autocast_gpu_dtype(d);
}
#endif

}  // namespace

AutocastGuard::AutocastGuard(c10::DeviceType device_type, c10::ScalarType dtype, bool enabled)
    : device_type_(device_type) {
  if (!enabled) return;
  active_ = true;
  was_enabled_ = is_enabled(device_type);
  previous_dtype_ = get_dtype(device_type);
  set_enabled(device_type, true);
  set_dtype(device_type, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Weights cast once per forward are cached; the cache must not outlive
  // the step (the optimizer changes the float32 masters).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(device_type_, was_enabled_);
  set_dtype(device_type_, previous_dtype_);
}

AutocastDisabled::AutocastDisabled() : cpu_(is_enabled(c10::DeviceType::CPU)), cuda_(is_enabled(c10::DeviceType::CUDA)) {
  if (cpu_) set_enabled(c10::DeviceType::CPU, false);
  if (cuda_) set_enabled(c10::DeviceType::CUDA, false);
}

AutocastDisabled::~AutocastDisabled() {
  if (cpu_) set_enabled(c10::DeviceType::CPU, true);
  if (cuda_) set_enabled(c10::DeviceType::CUDA, true);
}

bool autocast_enabled(c10::DeviceType device_type) { return is_enabled(device_type); }

void set_tf32(bool enabled) {
  at::globalContext().setAllowTF32CuBLAS(enabled);
  at::globalContext().setAllowTF32CuDNN(enabled);
}

}  // namespace asr::model
