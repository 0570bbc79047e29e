#include "asr/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "asr/core/error.h"

namespace asr {

double LrSchedule::lr_at(int64_t step) const {
  const double s = static_cast<double>(step + 1);  // step 0 already learns a little
  const double warm = static_cast<double>(std::max<int64_t>(warmup_steps, 1));
  if (kind == "constant") return peak_lr * std::min(1.0, s / warm);
  if (kind == "noam") {
    // Noam: d^-0.5 * min(s^-0.5, s * w^-1.5); scaled so its peak (at s = w) is peak_lr.
    double raw = std::min(1.0 / std::sqrt(s), s * std::pow(warm, -1.5));
    return peak_lr * raw * std::sqrt(warm);
  }
  if (kind == "cosine") {
    if (s <= warm) return peak_lr * s / warm;
    double span = std::max(1.0, static_cast<double>(total_steps) - warm);
    double progress = std::min(1.0, (s - warm) / span);
    double floor = peak_lr * min_lr_ratio;
    return floor + (peak_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  throw Error("unknown schedule.kind '" + kind + "' (use cosine, noam or constant)");
}

LrSchedule LrSchedule::for_run(double peak, int64_t max_steps) const {
  LrSchedule s = *this;
  s.peak_lr = peak;
  if (s.total_steps <= 0) s.total_steps = max_steps;
  return s;
}

double VqWeightSchedule::weight_at(int64_t step) const {
  if (bypassed(step)) return 0.0;  // no VQ loss while the RVQ is bypassed
  step -= bypass_steps;
  if (steps <= 0 || step >= steps) return end;
  double t = static_cast<double>(step) / static_cast<double>(steps);
  return start + (end - start) * t;
}

}  // namespace asr
