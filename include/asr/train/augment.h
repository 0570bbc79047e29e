// Waveform augmentation: gain, speed and time masks (the [augment] section
// of the config). Each utterance's random
// draws come from (seed, epoch, utterance index) alone, so augmentation is the
// same whatever the world size and however batches are split across ranks.
#pragma once
#include <cstdint>
#include <vector>

namespace asr {

struct AugmentOptions {
  bool enabled = false;
  double gain_db = 6.0;          // uniform in [-gain_db, +gain_db]
  double speed_min = 0.9;        // resampling factor range; 1 = unchanged
  double speed_max = 1.1;
  int time_masks = 2;            // number of zeroed spans
  double time_mask_seconds = 0.2;  // maximum width of each
};

// Returns the augmented copy of `audio` (its length changes with speed).
std::vector<float> augment_waveform(const std::vector<float>& audio, int sample_rate, const AugmentOptions& options,
                                    uint64_t seed, int64_t epoch, int64_t utterance);

}  // namespace asr
