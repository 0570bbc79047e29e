// Learning-rate and loss-weight schedules as pure functions of the step, so a
// resumed run recomputes them exactly from the checkpointed step.
#pragma once
#include <cstdint>
#include <string>

namespace asr {

struct LrSchedule {
  std::string kind = "cosine";  // "cosine", "noam" or "constant"
  double peak_lr = 1e-3;
  int64_t warmup_steps = 1000;
  int64_t total_steps = 100000;  // cosine decays to min_lr_ratio * peak_lr here
  double min_lr_ratio = 0.05;
  int d_model = 256;             // noam scales by d_model^-0.5 (normalized so the peak is peak_lr)

  double lr_at(int64_t step) const;
};

// The seed's VQ loss weight warmup: linear from `start` to `end` over `steps`.
struct VqWeightSchedule {
  double start = 10.0;
  double end = 0.5;
  int64_t steps = 1000;

  double weight_at(int64_t step) const;
};

}  // namespace asr
