// Learning-rate and loss-weight schedules as pure functions of the step, so a
// resumed run recomputes them exactly from the checkpointed step.
#pragma once
#include <cstdint>
#include <string>

namespace asr {

// The [schedule] section of the config; for_run() fills in what comes from
// other sections (the peak from optim.lr, the run length from train.max_steps).
struct LrSchedule {
  std::string kind = "cosine";  // "cosine", "noam" or "constant"
  int64_t warmup_steps = 1000;
  int64_t total_steps = 0;      // cosine decays to min_lr_ratio * peak_lr here; 0 = the run's max_steps
  double min_lr_ratio = 0.05;
  double peak_lr = 1e-3;        // not a [schedule] key: optim.lr

  double lr_at(int64_t step) const;
  LrSchedule for_run(double peak, int64_t max_steps) const;
};

// The seed's VQ loss weight warmup: linear from `start` to `end` over
// `steps`; the [vq_warmup] section of the config. With `bypass_steps`, the
// RVQ passes the encoder output through unquantized for that many steps,
// its codebooks are initialized on the features learned by then, and the
// ramp starts at that step.
struct VqWeightSchedule {
  double start = 10.0;
  double end = 0.5;
  int64_t steps = 1000;
  int64_t bypass_steps = 0;

  bool bypassed(int64_t step) const { return step < bypass_steps; }
  double weight_at(int64_t step) const;
};

}  // namespace asr
